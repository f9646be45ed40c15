#include "framework/endpoint/tls_endpoint.h"

#include "framework/base/ktls_probe.h"

namespace whorl::endpoint {

SSL4ServerEndpoint::SSL4ServerEndpoint(reactor::Runtime& runtime, uint16_t port,
                                       tls::TLSOptions options, TcpServerOptions tcp, int family)
    : runtime_(runtime), port_(port), options_(std::move(options)), tcp_(std::move(tcp)),
      family_(family) {}

Result<std::unique_ptr<ListeningPort>> SSL4ServerEndpoint::listen(
    std::shared_ptr<api::Factory> factory) {
  if (!options_) return options_.status();
  const std::shared_ptr<tls::TlsContext>& context = options_.context();
  if (context->role() != tls::TlsContext::Role::kServer) {
    return Status::invalidArgument(
        "a TLS server needs server options (a certificate's options()), not optionsForClientTLS");
  }
  // Say at start-up whether the kernel will take the record crypto (logged once per process).
  if (context->ktls() != tls::KtlsMode::kOff) (void)kernelTlsSupport();
  auto tlsFactory = std::make_shared<tls::TlsFactory>(context, std::move(factory));
  return TCPServerEndpoint(runtime_, family_, port_, tcp_).listen(std::move(tlsFactory));
}

SSL4ClientEndpoint::SSL4ClientEndpoint(reactor::Shard& shard, std::string host, uint16_t port,
                                       tls::TLSOptions options, TcpClientOptions tcp,
                                       TlsClientConnectOptions connect)
    : shard_(shard), host_(std::move(host)), port_(port), options_(std::move(options)),
      tcp_(std::move(tcp)), connect_(connect) {}

namespace {
// Why `options` cannot make client connections (failed, or server options), or ok.
Status usableForClient(const tls::TLSOptions& options) {
  if (!options) return options.status();
  if (options.context()->role() != tls::TlsContext::Role::kClient) {
    return Status::invalidArgument(
        "a TLS client needs client options (optionsForClientTLS), not a certificate's options()");
  }
  return Status::ok();
}

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
  if (Status unusable = usableForClient(options_); !unusable.isOk()) {
    // Reported like any failed attempt: on the endpoint's shard.
    shard_.post([done = std::move(done), unusable = std::move(unusable)]() mutable {
      done(std::move(unusable));
    });
    return;
  }
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
  auto tlsFactory = std::make_shared<tls::TlsFactory>(options_.context(), std::move(factory),
                                                      std::move(layerOptions));
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
                                                 tls::TLSOptions options,
                                                 std::string interface) {
  TcpServerOptions tcp;
  tcp.interface = std::move(interface);
  return SSL4ServerEndpoint(runtime, port, std::move(options), std::move(tcp))
      .listen(std::move(factory));
}

void connectSSL(reactor::Shard& shard, std::string host, uint16_t port,
                std::shared_ptr<api::Factory> factory, tls::TLSOptions options,
                ConnectCallback done) {
  SSL4ClientEndpoint(shard, std::move(host), port, std::move(options))
      .connect(std::move(factory), std::move(done));
}

}  // namespace whorl::endpoint
