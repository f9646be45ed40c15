// TLS endpoints (Twisted's SSL4ServerEndpoint, SSL4ClientEndpoint, listenSSL, connectSSL).
//
//   auto cert = tls::PrivateCertificate::loadPEMFile("certs/server.pem").value();
//   SSL4ServerEndpoint server(runtime, 8000, cert.options());
//   auto port = server.listen(Factory::forProtocol<Echo>());   // TLS on every shard
//
//   SSL4ClientEndpoint client(runtime.shard(0), "localhost", 8000,
//                             tls::optionsForClientTLS("example.com", authority));
//   client.connect(factory, [](Result<Protocol*> p) { /* after the handshake, or why not */ });
//
// All four take tls::TLSOptions, the type Transport::startTLS takes too: a certificate's
// options() converts to it (building the context there, once, shared by all shards and
// connections), and optionsForClientTLS returns it. Options whose build failed are reported by
// listen() (its result) and connect() (its callback, on the endpoint's shard); so are server
// options given to a client endpoint and client options given to a server endpoint.
//
// Unlike Twisted's, the client's connect result fires after the handshake by default, and it is the
// only report of a failed handshake (a verification failure is a failed connect): the protocol's
// connectionMade() comes when the handshake completed, just before the result, and a protocol
// whose handshake failed sees neither connectionMade() nor connectionLost(). Failures after that
// reach connectionLost() only. With waitForHandshake=false the result fires at TCP connect time,
// as Twisted's does: connectionMade() comes at once (writes wait for the handshake) and a failed
// handshake reaches connectionLost(). The server context is built once in listen() and shared by
// all shards; configuration errors are returned there.
#pragma once

#include <memory>

#include "framework/endpoint/endpoint.h"
#include "framework/tls/options.h"
#include "framework/tls/tls_layer.h"

namespace whorl::endpoint {

class SSL4ServerEndpoint final : public ServerEndpoint {
 public:
  SSL4ServerEndpoint(reactor::Runtime& runtime, uint16_t port, tls::TLSOptions options,
                     TcpServerOptions tcp = {}, int family = AF_INET);
  Result<std::unique_ptr<ListeningPort>> listen(std::shared_ptr<api::Factory> factory) override;

 private:
  reactor::Runtime& runtime_;
  uint16_t port_;
  tls::TLSOptions options_;
  TcpServerOptions tcp_;
  int family_;
};

struct TlsClientConnectOptions {
  bool waitForHandshake = true;
};

class SSL4ClientEndpoint final : public ClientEndpoint {
 public:
  SSL4ClientEndpoint(reactor::Shard& shard, std::string host, uint16_t port,
                     tls::TLSOptions options, TcpClientOptions tcp = {},
                     TlsClientConnectOptions connect = {});
  using ClientEndpoint::connect;
  void connect(std::shared_ptr<api::Factory> factory, ConnectCallback done,
               std::shared_ptr<net::ConnectAttempt> attempt) override;
  reactor::Shard& shard() const override { return shard_; }

 private:
  reactor::Shard& shard_;
  std::string host_;
  uint16_t port_;
  tls::TLSOptions options_;
  TcpClientOptions tcp_;
  TlsClientConnectOptions connect_;
};

// Twisted's reactor.listenSSL / connectSSL conveniences.
Result<std::unique_ptr<ListeningPort>> listenSSL(reactor::Runtime& runtime, uint16_t port,
                                                 std::shared_ptr<api::Factory> factory,
                                                 tls::TLSOptions options,
                                                 std::string interface = "");
void connectSSL(reactor::Shard& shard, std::string host, uint16_t port,
                std::shared_ptr<api::Factory> factory, tls::TLSOptions options,
                ConnectCallback done);

}  // namespace whorl::endpoint
