// Endpoints: where to listen and where to connect (Twisted's endpoints), plain TCP.
//
//   Runtime runtime;
//   TCP4ServerEndpoint server(runtime, 8000, {.interface = "127.0.0.1"});
//   auto port = server.listen(Factory::forProtocol<Echo>());   // Result<unique_ptr<ListeningPort>>
//   if (!port) { log(port.status()); return 1; }
//
//   HostnameEndpoint client(runtime.shard(0), "localhost", 8000);
//   client.connect(Factory::forProtocol<EchoClient>(), [](Result<Protocol*> p) { ... });
//
//   // Deferred forms, on a shard (a coroutine, or callbacks):
//   Result<ProtocolHandle<EchoClient>> c = co_await connectProtocol<EchoClient>(client, args...);
//   Result<std::unique_ptr<ListeningPort>> port = co_await server.listenDeferred(factory);
//
// listen() binds one SO_REUSEPORT socket per shard on the calling thread, so errors (address in
// use, permission denied) are returned at once, then each shard starts accepting; listenDeferred()
// fires once every shard accepts. connect() runs on the endpoint's shard; the result is reported
// exactly once: with the connected protocol after connectionMade (for TLS endpoints after the
// handshake), or with the failure (and then the protocol never sees connectionMade or
// connectionLost). A failure after that goes to connectionLost only. The Deferred form gives a
// ProtocolHandle, which says when the connection is gone instead of dangling, and cancelling it
// stops the attempt (resolution, TCP connect or TLS handshake) with kCancelled. Name resolution
// runs on the runtime's resolver thread, never on a shard. Endpoints are cheap values, copied by
// connect (a temporary endpoint is fine); a ListeningPort refers to its listeners weakly and may
// be destroyed while they listen.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/api/protocol.h"
#include "framework/base/address.h"
#include "framework/base/status.h"
#include "framework/base/weak_ref.h"
#include "framework/net/connector.h"
#include "framework/net/listener.h"
#include "framework/reactor/runtime.h"

namespace whorl::endpoint {

using ConnectCallback = net::ConnectCallback;

class ListeningPort {
 public:
  // `listeners`: one per shard, in shard order, read on their shards only.
  ListeningPort(reactor::Runtime& runtime, Address host,
                std::vector<WeakRef<net::Listener>> listeners);
  // The bound address (with the real port when 0 was asked for).
  const Address& getHost() const { return host_; }
  // Stops accepting on every shard. `done` runs (on some shard) when every socket is closed.
  // Open connections are not affected.
  void stopListening(std::function<void()> done = {});

 private:
  reactor::Runtime& runtime_;
  Address host_;
  std::vector<WeakRef<net::Listener>> listeners_;
};

class ServerEndpoint {
 public:
  virtual ~ServerEndpoint() = default;
  virtual Result<std::unique_ptr<ListeningPort>> listen(std::shared_ptr<api::Factory> factory) = 0;
  // listen() as a Deferred, on a shard of the runtime: fires once every shard accepts, or with
  // listen()'s error.
  api::Deferred<std::unique_ptr<ListeningPort>> listenDeferred(std::shared_ptr<api::Factory> factory);
};

class ClientEndpoint {
 public:
  virtual ~ClientEndpoint() = default;
  // Thread-safe: the attempt runs on the endpoint's shard, and so does `done`. `attempt` (on that
  // shard) cancels it; `done` then gets kCancelled.
  virtual void connect(std::shared_ptr<api::Factory> factory, ConnectCallback done,
                       std::shared_ptr<net::ConnectAttempt> attempt) = 0;
  void connect(std::shared_ptr<api::Factory> factory, ConnectCallback done) {
    connect(std::move(factory), std::move(done), nullptr);
  }
  // The Deferred form, called on the endpoint's shard: fires once with a handle to the connected
  // protocol, or with why not. cancel() stops the attempt.
  api::Deferred<api::ProtocolHandle<>> connect(std::shared_ptr<api::Factory> factory);
  // The shard connections are made on.
  virtual reactor::Shard& shard() const = 0;
};

// Connects `endpoint` to a new P(args...) (Twisted's connectProtocol, building the protocol for
// you): fires with a handle to it after connectionMade (for TLS endpoints, after the handshake),
// or with the failure, exactly once; a failure after that reaches P::connectionLost only. Call it on
// the endpoint's shard.
//
//   auto client = co_await connectProtocol<EchoClient>(
//       SSL4ClientEndpoint(reactor, "localhost", 8000, options), &exitCode);
template <typename P, typename... Args>
api::Deferred<api::ProtocolHandle<P>> connectProtocol(ClientEndpoint&& endpoint, Args... args);
template <typename P, typename... Args>
api::Deferred<api::ProtocolHandle<P>> connectProtocol(ClientEndpoint& endpoint, Args... args) {
  return endpoint.connect(api::Factory::forProtocol<P>(std::move(args)...))
      .addCallback([](api::ProtocolHandle<> h) { return h.as<P>(); });
}
template <typename P, typename... Args>
api::Deferred<api::ProtocolHandle<P>> connectProtocol(ClientEndpoint&& endpoint, Args... args) {
  return connectProtocol<P>(endpoint, std::move(args)...);
}

struct TcpServerOptions {
  std::string interface;  // empty: all interfaces of the endpoint's family
  int backlog = 4096;
  net::TransportOptions transport{};
};

struct TcpClientOptions {
  std::chrono::milliseconds timeout{30000};
  net::TransportOptions transport{};
};

// Listens on IPv4 (TCP4ServerEndpoint) or IPv6 (TCP6ServerEndpoint) on every shard.
class TCPServerEndpoint : public ServerEndpoint {
 public:
  TCPServerEndpoint(reactor::Runtime& runtime, int family, uint16_t port,
                    TcpServerOptions options = {});
  Result<std::unique_ptr<ListeningPort>> listen(std::shared_ptr<api::Factory> factory) override;

 private:
  reactor::Runtime& runtime_;
  int family_;
  uint16_t port_;
  TcpServerOptions options_;
};

class TCP4ServerEndpoint final : public TCPServerEndpoint {
 public:
  TCP4ServerEndpoint(reactor::Runtime& runtime, uint16_t port, TcpServerOptions options = {})
      : TCPServerEndpoint(runtime, AF_INET, port, std::move(options)) {}
};

class TCP6ServerEndpoint final : public TCPServerEndpoint {
 public:
  TCP6ServerEndpoint(reactor::Runtime& runtime, uint16_t port, TcpServerOptions options = {})
      : TCPServerEndpoint(runtime, AF_INET6, port, std::move(options)) {}
};

// Connects to host:port. TCP4ClientEndpoint resolves to IPv4 only; HostnameEndpoint tries every
// address of the name (IPv4 and IPv6) in the resolver's order.
class TCPClientEndpoint : public ClientEndpoint {
 public:
  TCPClientEndpoint(reactor::Shard& shard, int family, std::string host, uint16_t port,
                    TcpClientOptions options = {});
  using ClientEndpoint::connect;
  void connect(std::shared_ptr<api::Factory> factory, ConnectCallback done,
               std::shared_ptr<net::ConnectAttempt> attempt) override;
  reactor::Shard& shard() const override { return shard_; }

 private:
  reactor::Shard& shard_;
  int family_;
  std::string host_;
  uint16_t port_;
  TcpClientOptions options_;
};

class TCP4ClientEndpoint final : public TCPClientEndpoint {
 public:
  TCP4ClientEndpoint(reactor::Shard& shard, std::string host, uint16_t port,
                     TcpClientOptions options = {})
      : TCPClientEndpoint(shard, AF_INET, std::move(host), port, std::move(options)) {}
};

class HostnameEndpoint final : public TCPClientEndpoint {
 public:
  HostnameEndpoint(reactor::Shard& shard, std::string host, uint16_t port,
                   TcpClientOptions options = {})
      : TCPClientEndpoint(shard, AF_UNSPEC, std::move(host), port, std::move(options)) {}
};

}  // namespace whorl::endpoint
