// starttls_client: the C++ port of the seed's starttls_client.py. Sends "plain text" and
// "STARTTLS", waits for READY, switches the connection to TLS (verifying "example.com" with
// server.pem's certificate as the authority), sends "secure text" and closes.
//
//   bazel run //examples:starttls_client
//   received: READY
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

class StartTLSClient : public api::LineReceiver {
 public:
  StartTLSClient(tls::TLSOptions options, int* exitCode)
      : options_(std::move(options)), exitCode_(exitCode) {}

  void connectionMade() override {
    sendLine("plain text");
    sendLine("STARTTLS");
  }
  void lineReceived(std::string_view line) override {
    std::printf("received: %.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
    if (line == "READY") {
      if (Status s = transport()->startTLS(options_); !s.isOk()) {
        std::printf("startTLS failed: %s\n", s.message().c_str());
        *exitCode_ = 1;
        transport()->abortConnection();
        return;
      }
      sendLine("secure text");
      transport()->loseConnection();
    }
  }
  void handshakeCompleted() override { secured_ = true; }
  void connectionLost(const Status& reason) override {
    if (!secured_ || !reason.isCleanClose()) {
      std::printf("connection lost: %s\n", reason.message().c_str());
      *exitCode_ = 1;
    }
    transport()->reactor().stop();
  }

 private:
  tls::TLSOptions options_;
  int* exitCode_;
  bool secured_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 8000;
  std::string host = "localhost";
  std::string caPath = "certs/server.pem";
  Flags flags("starttls_client", "Line client that switches to TLS after READY (the seed's starttls_client.py).");
  flags.add("host", &host, "server to connect to");
  flags.add("port", &port, "server TCP port");
  flags.add("ca", &caPath, "PEM with the certificate to trust for example.com (the seed uses server.pem)");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);

  auto authority = tls::Certificate::loadPEMFile(examples::findFile(caPath));
  if (!authority) {
    std::fprintf(stderr, "starttls_client: %s\n", authority.status().message().c_str());
    return 1;
  }
  tls::TLSOptions options = tls::optionsForClientTLS("example.com", *authority);
  if (!options) {
    std::fprintf(stderr, "starttls_client: %s\n", options.status().message().c_str());
    return 1;
  }
  int exitCode = 0;
  reactor::Runtime runtime({.shards = 1});
  endpoint::HostnameEndpoint endpoint(runtime.shard(0), host, static_cast<uint16_t>(port));
  endpoint.connect(api::Factory::forProtocol<StartTLSClient>(options, &exitCode),
                   [&](Result<api::Protocol*> p) {
                     if (!p) {
                       std::printf("connection failed: %s\n", p.status().message().c_str());
                       exitCode = 1;
                       runtime.stop();
                     }
                   });
  runtime.run();
  return exitCode;
}
