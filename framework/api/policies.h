// Policies: factories that wrap another factory to bound its connections (Twisted's
// twisted.protocols.policies). LimitTotalConnectionsFactory refuses connections beyond a number
// open at once; TimeoutFactory closes a connection that stays idle, or open at all, too long.
//
//   auto scrapes = metrics::metricsHttpFactory(render);
//   auto timed = std::make_shared<TimeoutFactory>(scrapes, TimeoutOptions{.idle = 10s, .total = 10s});
//   auto limited = std::make_shared<LimitTotalConnectionsFactory>(timed, 16);
//   endpoint.listen(limited);
//   limited->refusedCount();   // connections closed at once because 16 were open
//
// The wrapped protocol does not notice: a ProtocolWrapper sits between it and the transport,
// passes every call through both ways (flow control, startTLS, TLS queries, the kernel TLS side
// a TLS layer needs) and is its transport. Subclass ProtocolWrapper and WrappingFactory for other
// policies. A timed-out connection is closed with loseConnection() (what was written still goes
// out, bounded by the transport's send timeout) and the wrapped protocol's connectionLost() gets
// a kTimeout reason saying which limit ended it, instead of the clean close the transport saw.
//
// Ownership: a wrapping factory holds its wrapped factory; a ProtocolWrapper owns the protocol it
// wraps (the transport owns the wrapper). Counts live in state shared with the protocols, so a
// factory may be destroyed while its connections stay open (a stopped listener during a drain).
// Factories are called from every shard thread at once: the count is one atomic, process-wide.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "framework/api/protocol.h"
#include "framework/api/reactor.h"
#include "framework/api/transport.h"

namespace whorl::api {

// Wraps one protocol: calls from the transport go to it, and it sees this wrapper as its
// transport, whose calls go to the real one. Override the Protocol hooks and call the base.
class ProtocolWrapper : public Protocol {
 public:
  explicit ProtocolWrapper(std::unique_ptr<Protocol> wrapped);
  ~ProtocolWrapper() override;

  Protocol& wrapped() const { return *wrapped_; }

  void connectionMade() override;
  void dataReceived(std::string_view data) override;
  void connectionLost(const Status& reason) override;
  void handshakeCompleted() override;
  void stopRequested(Reactor::Clock::time_point deadline) override;
  void pauseProducing() override;
  void resumeProducing() override;
  std::string takeUnprocessedInput() override;

 private:
  // The wrapped protocol's transport: everything goes to the wrapper's own transport (a class
  // of its own because Transport and Protocol both have pauseProducing(), meaning different
  // things).
  class Upper final : public Transport {
   public:
    explicit Upper(ProtocolWrapper* w) : w_(w) {}
    void write(std::string_view data) override;
    void writeSequence(std::span<const std::string_view> parts) override;
    void loseConnection() override;
    void abortConnection() override;
    Address getPeer() const override;
    Address getHost() const override;
    void pauseProducing() override;
    void resumeProducing() override;
    size_t bufferedBytes() const override;
    bool disconnecting() const override;
    Reactor& reactor() override;
    bool isTLS() const override;
    std::shared_ptr<X509> getPeerCertificate() const override;
    std::optional<std::string> negotiatedProtocol() const override;
    std::string tlsVersion() const override;
    std::string cipher() const override;
    bool sessionResumed() const override;
    TlsMode tlsMode() const override;
    Status startTLS(std::shared_ptr<const TlsUpgrade> tls, StartTLSOptions options) override;
    void sendFile(int fd, uint64_t offset, uint64_t length,
                  std::function<void(Status)> done) override;

   private:
    LowerTransport* lower() override;
    Transport& t() const { return *w_->transport(); }
    ProtocolWrapper* w_;
  };

  Upper upper_{this};
  std::unique_ptr<Protocol> wrapped_;
};

// Builds the wrapped factory's protocol and puts a wrapper around it (wrap()); a refusal by the
// wrapped factory stays a refusal. stopRequested() is passed on.
class WrappingFactory : public Factory {
 public:
  explicit WrappingFactory(std::shared_ptr<Factory> wrapped) : wrapped_(std::move(wrapped)) {}
  std::unique_ptr<Protocol> buildProtocol(const Address& peer) override;
  void stopRequested(Reactor::Clock::time_point deadline) override;

 protected:
  virtual std::unique_ptr<Protocol> wrap(std::unique_ptr<Protocol> protocol) = 0;
  Factory& wrappedFactory() const { return *wrapped_; }

 private:
  std::shared_ptr<Factory> wrapped_;
};

// At most `limit` connections open at once (all shards together); the next ones are refused
// (buildProtocol returns null: the transport closes the socket at once) and counted. A place is
// given back when the connection is lost (its socket is closed by then), once the wrapped
// protocol's connectionLost() has returned.
class LimitTotalConnectionsFactory final : public WrappingFactory {
 public:
  LimitTotalConnectionsFactory(std::shared_ptr<Factory> wrapped, uint64_t limit);
  std::unique_ptr<Protocol> buildProtocol(const Address& peer) override;

  uint64_t limit() const { return limit_; }
  uint64_t connectionCount() const { return counts_->open.load(std::memory_order_relaxed); }
  uint64_t refusedCount() const { return counts_->refused.load(std::memory_order_relaxed); }

  struct Counts {
    std::atomic<uint64_t> open{0};
    std::atomic<uint64_t> refused{0};
  };

 protected:
  std::unique_ptr<Protocol> wrap(std::unique_ptr<Protocol> protocol) override;

 private:
  uint64_t limit_;
  std::shared_ptr<Counts> counts_;
};

struct TimeoutOptions {
  // No data received for this long: close (Twisted's TimeoutFactory). Zero: no idle limit.
  Reactor::Clock::duration idle{0};
  // Open this long, whatever it does: close (a peer trickling bytes cannot stay). Zero: none.
  Reactor::Clock::duration total{0};
};

// Gives every connection the limits of `options`, counted from connectionMade().
class TimeoutFactory final : public WrappingFactory {
 public:
  TimeoutFactory(std::shared_ptr<Factory> wrapped, TimeoutOptions options)
      : WrappingFactory(std::move(wrapped)), options_(options) {}
  const TimeoutOptions& options() const { return options_; }

 protected:
  std::unique_ptr<Protocol> wrap(std::unique_ptr<Protocol> protocol) override;

 private:
  TimeoutOptions options_;
};

}  // namespace whorl::api
