// starttls_server: the C++ port of the seed's starttls_server.py. Plain lines until the client
// says STARTTLS; the server answers READY and both sides switch the same connection to TLS
// (server.pem's identity), then go on exchanging lines.
//
//   bazel run //examples:starttls_server        # then: bazel run //examples:starttls_client
//   received: plain text
//   received: STARTTLS
//   -- Switching to TLS
//   received: secure text
#include <cstdio>

// [snippet include]
#include "framework/whorl.h"
// [end snippet]

using namespace whorl;

namespace {

// [snippet starttls-server]
class TLSServer : public LineReceiver {
 public:
  explicit TLSServer(tls::TLSOptions options) : options_(std::move(options)) {}

  void lineReceived(std::string_view line) override {
    std::printf("received: %.*s\n", static_cast<int>(line.size()), line.data());
    if (line == "STARTTLS") {
      std::printf("-- Switching to TLS\n");
      sendLine("READY");
      if (Status s = transport()->startTLS(options_); !s.isOk()) {
        std::printf("startTLS failed: %s\n", s.message().c_str());
        transport()->loseConnection();
      }
    }
  }
  void connectionLost(const Status& reason) override {
    if (reason.isCleanClose()) return;
    WHORL_LOG(kWarning, "connection lost: %s", reason.message().c_str());
  }

 private:
  tls::TLSOptions options_;  // built once (the seed's factory.options), shared by every connection
};
// [end snippet]

}  // namespace

int main(int argc, char** argv) {
  Flags flags("starttls_server",
              "Line server that switches to TLS on STARTTLS (the seed's starttls_server.py).");
  auto& port = flags.add("port", 8000, "TCP port to listen on");
  auto& interface =
      flags.add("interface", "", "address to listen on (default: all IPv4 interfaces)");
  auto& certPath =
      flags.add("cert", "certs/server.pem", "PEM file with the private key and certificate");
  auto& shards = flags.add("shards", 0, "reactor threads; 0 means one per online CPU");
  flags.parseOrExit(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line as it happens
  return react([&](Shard& reactor) -> Deferred<void> {
    WHORL_CO_TRY(auto cert, tls::PrivateCertificate::loadPEMFile(findDataFile(certPath)));
    // [snippet starttls-server-main]
    tls::TLSOptions options = cert.options();  // the seed's factory.options = cert.options()
    if (!options) co_return options.status();
    WHORL_CO_TRY(auto listening, TCP4ServerEndpoint(reactor, port, {.interface = interface})
                                     .listen(Factory::forProtocol<TLSServer>(options)));
    // [end snippet]
    WHORL_LOG(kInfo, "STARTTLS line server listening on %s; stop with Ctrl-C",
              listening->getHost().toString().c_str());
    co_return co_await reactor.whenStopping();
  }, {.runtime = {.shards = shards}});
}
