// echoserv_ssl: the C++ counterpart of the seed's echoserv_ssl.py: the Echo protocol over TLS on
// port 8000, with the key and certificate of certs/server.pem. A client silent for --idle-timeout
// is closed (the reason is logged); the transport's defaults bound the TLS handshake (10 s) and a
// client that stops reading (60 s).
//
//   bazel run //examples:echoserv_ssl -- --port 8000 --shards 2
//   openssl s_client -connect localhost:8000 -CAfile certs/public.pem -verify_hostname example.com
#include "examples/echo_protocols.h"

using namespace whorl;

// Echo, closing a client idle for `idle` (TimeoutMixin logs "closing connection from ...: idle
// timeout, no activity for 300 s").
class IdleEcho : public TimeoutMixin<examples::Echo> {
 public:
  explicit IdleEcho(std::chrono::milliseconds idle) : idle_(idle) {}
  void connectionMade() override { setTimeout(idle_); }
  void dataReceived(std::string_view data) override {
    resetTimeout();
    Echo::dataReceived(data);
  }
  std::chrono::milliseconds idle_;
};

int main(int argc, char** argv) {
  Flags flags("echoserv_ssl", "TLS echo server (the seed's echoserv_ssl.py).");
  auto& port = flags.add("port", 8000, "TCP port to listen on");
  auto& interface =
      flags.add("interface", "", "address to listen on (default: all IPv4 interfaces)");
  auto& certPath =
      flags.add("cert", "certs/server.pem", "PEM file with the private key and certificate");
  auto& shards = flags.add("shards", 0, "reactor threads; 0 means one per online CPU");
  auto& drain = flags.add("drain-timeout", std::chrono::seconds(10),
                          "seconds open connections get to finish on SIGINT/SIGTERM");
  auto& idle = flags.add("idle-timeout", std::chrono::seconds(300),
                         "seconds a client may stay silent before it is closed (0: never)");
  flags.parseOrExit(argc, argv);
  // [snippet server]
  return react([&](Shard& reactor) -> Deferred<void> {
    WHORL_CO_TRY(auto certificate, tls::PrivateCertificate::loadPEMFile(findDataFile(certPath)));
    WHORL_CO_TRY(auto listening, listenSSL(reactor, port, Factory::forProtocol<IdleEcho>(idle),
                                           certificate.options(), interface));
    WHORL_LOG(kInfo, "TLS echo server listening on %s as %s; stop with Ctrl-C",
              listening->getHost().toString().c_str(), certificate.toString().c_str());
    co_return co_await reactor.whenStopping();  // serve until SIGINT/SIGTERM
  }, {.runtime = {.shards = shards, .drainTimeout = drain}});
  // [end snippet]
}
