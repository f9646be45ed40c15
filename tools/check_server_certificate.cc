// check_server_certificate: the C++ counterpart of the seed's check_server_certificate.py.
// Connects to HOST:PORT (default 443) over TLS, verifies the server's certificate chain against
// the platform's trust store (or --ca FILE) and its identity against HOST (or --hostname), and
// prints "OK: <Certificate Subject=...>" or "BAD: <reason>". Exits 0 for OK, 1 for BAD.
//
//   bazel run //tools:check_server_certificate -- www.twistedmatrix.com
//   OK: <Certificate Subject=www.twistedmatrix.com ...>
//   Lost.
//   # against //examples:echoserv_ssl, which serves the example.com certificate of certs/:
//   bazel run //tools:check_server_certificate -- --ca certs/public.pem --hostname example.com localhost 8000
//
// Like the seed, the protocol is connected before the handshake completes (waitForHandshake =
// false) and writes "GET / HTTP/1.0" at once (queued until the handshake is done); a verification
// failure reaches it as the reason in connectionLost.
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "examples/files.h"
#include "framework/api/protocol.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"

using namespace whorl;

namespace {

class ShowCertificate : public api::Protocol {
 public:
  explicit ShowCertificate(int* exitCode) : exitCode_(exitCode) {}

  void connectionMade() override { transport()->write("GET / HTTP/1.0\r\n\r\n"); }
  // The seed waits for the first data; the end of the handshake is as good and sooner (a server
  // that never answers does not leave us hanging).
  void handshakeCompleted() override { show(); }
  void dataReceived(std::string_view) override { show(); }
  void connectionLost(const Status& reason) override {
    std::printf("Lost.\n");
    if (!shown_ && !reason.isCleanClose()) {
      std::printf("BAD: %s\n", reason.message().c_str());
    }
    // Closed before we saw a certificate (clean or not): not OK.
    if (!shown_) *exitCode_ = 1;
    std::fflush(stdout);
    transport()->reactor().stop();
  }

 private:
  void show() {
    if (shown_) return;
    shown_ = true;
    tls::Certificate certificate(transport()->getPeerCertificate());
    std::printf("OK: %s\n", certificate.toString().c_str());
    std::fflush(stdout);
    *exitCode_ = 0;
    transport()->abortConnection();
  }

  int* exitCode_;
  bool shown_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  std::string caPath;
  std::string hostname;
  double timeout = 30;
  Flags flags("check_server_certificate",
              "Checks a TLS server's certificate (the seed's check_server_certificate.py): prints "
              "OK: <certificate> or BAD: <reason>; exits 0 or 1.");
  flags.add("ca", &caPath,
            "PEM file with the authority to trust instead of the platform's trust store");
  flags.add("hostname", &hostname, "name the certificate must prove (default: HOST)");
  flags.add("timeout", &timeout, "seconds to wait for the TCP connection");
  flags.setPositionalHelp("HOST [PORT]");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);

  const auto& args = flags.positional();
  if (args.empty() || args.size() > 2) {
    std::fprintf(stderr, "usage: check_server_certificate [--ca FILE] [--hostname NAME] HOST [PORT]\n");
    return 2;
  }
  const std::string& host = args[0];
  int port = 443;
  if (args.size() == 2) {
    char* end = nullptr;
    long p = std::strtol(args[1].c_str(), &end, 10);
    if (args[1].empty() || *end != '\0' || p < 1 || p > 65535) {
      std::fprintf(stderr, "check_server_certificate: bad port %s\n", args[1].c_str());
      return 2;
    }
    port = static_cast<int>(p);
  }
  if (hostname.empty()) hostname = host;

  std::optional<tls::TrustRoot> trustRoot;
  if (!caPath.empty()) {
    auto authorities = tls::trustRootFromPath(examples::findFile(caPath));
    if (!authorities) {
      std::fprintf(stderr, "check_server_certificate: %s\n", authorities.status().message().c_str());
      return 2;
    }
    trustRoot = *authorities;
  } else {
    auto platform = tls::platformTrust();
    if (!platform) {
      std::fprintf(stderr, "check_server_certificate: %s\n", platform.status().message().c_str());
      return 2;
    }
    trustRoot = *platform;
  }
  tls::TLSOptions options = tls::optionsForClientTLS(hostname, trustRoot);
  if (!options) {
    std::fprintf(stderr, "check_server_certificate: %s\n", options.status().message().c_str());
    return 2;
  }

  int exitCode = 1;
  reactor::Runtime runtime({.shards = 1});
  endpoint::TcpClientOptions tcp;
  tcp.timeout = std::chrono::milliseconds(static_cast<long>(timeout * 1000));
  endpoint::SSL4ClientEndpoint endpoint(runtime.shard(0), host, static_cast<uint16_t>(port),
                                        options, tcp, {.waitForHandshake = false});
  endpoint.connect(api::Factory::forProtocol<ShowCertificate>(&exitCode),
                   [&](Result<api::Protocol*> p) {
                     if (!p) {
                       std::printf("BAD: %s\n", p.status().message().c_str());
                       std::fflush(stdout);
                       exitCode = 1;
                       runtime.stop();
                     }
                   });
  runtime.run();
  return exitCode;
}
