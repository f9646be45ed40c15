// The echo service's connections: EchoConnection echoes, counts, times out idle clients and logs
// one line when it ends, whose `kind` says why (idle_timeout, send_timeout: the client stopped
// reading, also when that ended an idle close; see classify.h for the rest); AdmissionFactory
// admits connections up to --max-connections.
//
//   ServiceState state{metrics, {.maxConnections = 10000, .idleTimeout = 300s}};
//   auto app = std::make_shared<ServiceFactory>(state, "ssl:8443", /*tls=*/true);
//   auto stack = std::make_shared<tls::TlsFactory>(context, app);   // TLS under the echo
//   endpoint.listen(std::make_shared<AdmissionFactory>(state, stack));
//
// Admission happens below TLS (AdmissionFactory, outermost), so a refused client costs no
// handshake: its socket is closed at once with a FIN and counted. The count of open connections
// is process-wide (an atomic shared by the shards); each EchoConnection gives its place back when
// its connection is lost, or in its destructor on paths without connectionLost. A refused
// client's socket is closed with a FIN, or a reset if it had already sent bytes (the kernel's
// rule for closing with unread data). ServiceState must outlive the runtime's shards.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "examples/service/service_metrics.h"
#include "framework/api/protocol.h"
#include "framework/api/timeout_mixin.h"

namespace whorl::service {

struct ServiceLimits {
  uint64_t maxConnections = 0;         // 0: no limit
  std::chrono::milliseconds idleTimeout{0};  // 0: none
};

struct ServiceState {
  ServiceMetrics& metrics;
  ServiceLimits limits;
  std::atomic<uint64_t> open{0};
  std::atomic<int64_t> lastRefusalLog{0};  // steady-clock seconds: refusals are logged once a second
};

class EchoConnection final : public api::TimeoutMixin<> {
 public:
  EchoConnection(ServiceState& state, std::shared_ptr<const std::string> listener, bool tls);
  ~EchoConnection() override;

  void connectionMade() override;
  void dataReceived(std::string_view data) override;
  void handshakeCompleted() override;
  void connectionLost(const Status& reason) override;
  // The idle timeout: closes without the mixin's own log line (the connection's line says it).
  void timeoutConnection() override;

 private:
  ServiceState& state_;
  void releaseSlot();

  // Shared with the factory: connections outlive their listener during a drain.
  std::shared_ptr<const std::string> listener_;
  bool slotHeld_ = true;
  bool tls_;
  bool handshakeDone_ = false;
  int shard_ = 0;
  uint64_t bytesIn_ = 0;
  uint64_t bytesOut_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// Builds EchoConnections for one listener (its name is the endpoint string, for logs).
class ServiceFactory final : public api::Factory {
 public:
  ServiceFactory(ServiceState& state, std::string listener, bool tls)
      : state_(state), listener_(std::make_shared<const std::string>(std::move(listener))),
        tls_(tls) {}
  std::unique_ptr<api::Protocol> buildProtocol(const Address& peer) override;

 private:
  ServiceState& state_;
  std::shared_ptr<const std::string> listener_;
  bool tls_;
};

// Takes a place among --max-connections, or refuses (returns null: the transport closes), then
// builds the rest of the stack with `inner`.
class AdmissionFactory final : public api::Factory {
 public:
  AdmissionFactory(ServiceState& state, std::shared_ptr<api::Factory> inner)
      : state_(state), inner_(std::move(inner)) {}
  std::unique_ptr<api::Protocol> buildProtocol(const Address& peer) override;

 private:
  ServiceState& state_;
  std::shared_ptr<api::Factory> inner_;
};

}  // namespace whorl::service
