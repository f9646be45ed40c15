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

#include "examples/files.h"
#include "framework/api/line_receiver.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"

using namespace whorl;

namespace {

class TLSServer : public api::LineReceiver {
 public:
  explicit TLSServer(tls::TLSOptions options) : options_(std::move(options)) {}

  void lineReceived(std::string_view line) override {
    std::printf("received: %.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
    if (line == "STARTTLS") {
      std::printf("-- Switching to TLS\n");
      std::fflush(stdout);
      sendLine("READY");
      if (Status s = transport()->startTLS(options_); !s.isOk()) {
        std::printf("startTLS failed: %s\n", s.message().c_str());
        transport()->loseConnection();
      }
    }
  }
  void connectionLost(const Status& reason) override {
    if (!reason.isCleanClose()) WHORL_LOG(kWarning, "connection lost: %s", reason.message().c_str());
  }

 private:
  tls::TLSOptions options_;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 8000;
  int shards = 0;
  std::string interface;
  std::string certPath = "certs/server.pem";
  Flags flags("starttls_server", "Line server that switches to TLS on STARTTLS (the seed's starttls_server.py).");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("cert", &certPath, "PEM file with the private key and certificate");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.parseOrExit(argc, argv);

  auto cert = tls::PrivateCertificate::loadPEMFile(examples::findFile(certPath));
  if (!cert) {
    std::fprintf(stderr, "starttls_server: %s\n", cert.status().message().c_str());
    return 1;
  }
  tls::TLSOptions options = cert->options();  // factory.options = cert.options()
  if (!options) {
    std::fprintf(stderr, "starttls_server: %s\n", options.status().message().c_str());
    return 1;
  }
  reactor::RuntimeOptions ro;
  ro.shards = shards;
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "starttls_server: %s\n", s.message().c_str());
    return 1;
  }
  endpoint::TcpServerOptions so;
  so.interface = interface;
  auto listening = endpoint::TCP4ServerEndpoint(runtime, static_cast<uint16_t>(port), so)
                       .listen(api::Factory::forProtocol<TLSServer>(options));
  if (!listening) {
    std::fprintf(stderr, "starttls_server: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo, "STARTTLS line server listening on %s; stop with Ctrl-C",
            (*listening)->getHost().toString().c_str());
  return runtime.run();
}
