#include "framework/endpoint/tls_endpoint.h"

#include "framework/net/ktls_probe.h"

namespace whorl::endpoint {

SSL4ServerEndpoint::SSL4ServerEndpoint(reactor::Runtime& runtime, uint16_t port,
                                       tls::CertificateOptions options, TcpServerOptions tcp,
                                       int family)
    : runtime_(runtime), port_(port), options_(std::move(options)), tcp_(std::move(tcp)),
      family_(family) {}

Result<std::unique_ptr<ListeningPort>> SSL4ServerEndpoint::listen(
    std::shared_ptr<api::Factory> factory) {
  auto context = options_.context();
  if (!context) return context.status();
  // Say at start-up whether the kernel will take the record crypto (logged once per process).
  if (options_.ktls != tls::KtlsMode::kOff) (void)net::kernelTlsSupport();
  auto tlsFactory = std::make_shared<tls::TlsFactory>(*context, std::move(factory));
  return TCPServerEndpoint(runtime_, family_, port_, tcp_).listen(std::move(tlsFactory));
}

SSL4ClientEndpoint::SSL4ClientEndpoint(reactor::Shard& shard, std::string host, uint16_t port,
                                       tls::ClientTLSOptions options, TcpClientOptions tcp,
                                       TlsClientConnectOptions connect)
    : shard_(shard), host_(std::move(host)), port_(port), options_(std::move(options)),
      tcp_(std::move(tcp)), connect_(connect) {}

namespace {
// Joins the TCP connect result and the handshake result into one callback.
struct PendingConnect {
  ConnectCallback done;
  api::Protocol* app = nullptr;
  bool tcpConnected = false;
  std::optional<Status> handshake;
  void finish(Result<api::Protocol*> r) {
    if (!done) return;
    auto cb = std::move(done);
    done = nullptr;
    cb(std::move(r));
  }
};
}  // namespace

void SSL4ClientEndpoint::connect(std::shared_ptr<api::Factory> factory, ConnectCallback done,
                                 std::shared_ptr<net::ConnectAttempt> attempt) {
  auto pending = std::make_shared<PendingConnect>();
  pending->done = std::move(done);
  bool wait = connect_.waitForHandshake;
  tls::TlsLayerOptions layerOptions;
  if (wait) {
    // The application is connected only once the handshake completed, so a failed handshake is
    // reported once, here, and never reaches its connectionLost.
    layerOptions.connectAfterHandshake = true;
    layerOptions.onHandshake = [pending, attempt, host = host_](Status s) {
      if (!s.isOk() && attempt && attempt->cancelled()) {
        s = net::ConnectAttempt::cancelledStatus("TLS handshake with " + host);
      }
      pending->handshake = s;
      if (!pending->tcpConnected) return;
      if (s.isOk()) {
        pending->finish(pending->app);
      } else {
        pending->finish(s);
      }
    };
  }
  auto tlsFactory =
      std::make_shared<tls::TlsFactory>(options_.context, std::move(factory), std::move(layerOptions));
  HostnameEndpoint(shard_, host_, port_, tcp_)
      .connect(tlsFactory, [pending, wait, attempt](Result<api::Protocol*> r) {
        if (!r) {
          pending->finish(r.status());
          return;
        }
        auto* layer = static_cast<tls::TlsLayer*>(*r);
        pending->app = layer->application();
        pending->tcpConnected = true;
        if (attempt && wait && !pending->handshake) {
          // The handshake stage: cancelling closes the connection, which fails the handshake.
          attempt->setStop([lower = api::ProtocolHandle<>(layer)] {
            if (api::Protocol* l = lower.get()) l->transport()->abortConnection();
          });
        }
        if (!wait) {
          pending->finish(pending->app);
        } else if (pending->handshake) {
          if (pending->handshake->isOk()) {
            pending->finish(pending->app);
          } else {
            pending->finish(*pending->handshake);
          }
        }
      }, attempt);
}

Result<std::unique_ptr<ListeningPort>> listenSSL(reactor::Runtime& runtime, uint16_t port,
                                                 std::shared_ptr<api::Factory> factory,
                                                 tls::CertificateOptions options,
                                                 std::string interface) {
  TcpServerOptions tcp;
  tcp.interface = std::move(interface);
  return SSL4ServerEndpoint(runtime, port, std::move(options), std::move(tcp))
      .listen(std::move(factory));
}

void connectSSL(reactor::Shard& shard, std::string host, uint16_t port,
                std::shared_ptr<api::Factory> factory, tls::ClientTLSOptions options,
                ConnectCallback done) {
  SSL4ClientEndpoint(shard, std::move(host), port, std::move(options))
      .connect(std::move(factory), std::move(done));
}

}  // namespace whorl::endpoint
