// check_server_certificate: the C++ counterpart of the seed's check_server_certificate.py.
// Connects to HOST:PORT (default 443) over TLS, verifies the server's certificate chain against
// the platform's trust store (or --ca FILE) and its identity against HOST (or --hostname), and
// prints "OK: <Certificate Subject=...>" or "BAD: <reason>". Exits 0 for OK, 1 for BAD, 2 for a
// usage or set-up error.
//
//   bazel run //tools:check_server_certificate -- www.twistedmatrix.com
//   OK: <Certificate Subject=www.twistedmatrix.com ...>
//   Lost.
//   # against //examples:echoserv_ssl, which serves the example.com certificate of certs/:
//   bazel run //tools:check_server_certificate -- --ca certs/public.pem --hostname example.com localhost 8000
//
// Like the seed, the protocol is connected before the handshake completes (waitForHandshake =
// false) and writes "GET / HTTP/1.0" at once (queued until the handshake is done); a verification
// failure reaches it as the reason in connectionLost. The seed prints the certificate at the first
// data; the end of the handshake is as good and sooner (a server that never answers does not leave
// us hanging).
#include <cstdio>

#include "framework/whorl.h"

using namespace whorl;

namespace {

// [snippet show-certificate]
class ShowCertificate : public Protocol {
 public:
  explicit ShowCertificate(Deferred<int> done) : done_(std::move(done)) {}

  void connectionMade() override { transport()->write("GET / HTTP/1.0\r\n\r\n"); }
  void handshakeCompleted() override {
    std::printf("OK: %s\n", tls::Certificate(transport()->getPeerCertificate()).toString().c_str());
    shown_ = true;
    transport()->abortConnection();
  }
  void connectionLost(const Status& reason) override {
    std::printf("Lost.\n");
    if (!shown_ && !reason.isCleanClose()) std::printf("BAD: %s\n", reason.message().c_str());
    done_.callback(shown_ ? 0 : 1);
  }

 private:
  Deferred<int> done_;
  bool shown_ = false;
};
// [end snippet]

}  // namespace

int main(int argc, char** argv) {
  Flags flags("check_server_certificate",
              "Checks a TLS server's certificate (the seed's check_server_certificate.py): prints "
              "OK: <certificate> or BAD: <reason>; exits 0 or 1.");
  auto& host = flags.addArgument("HOST", "the server");
  auto& port = flags.addArgument("PORT", 443, "its TLS port");
  auto& caPath = flags.add(
      "ca", "", "PEM file with the authority to trust instead of the platform's trust store");
  auto& hostname = flags.add("hostname", "", "name the certificate must prove (default: HOST)");
  auto& timeout =
      flags.add("timeout", std::chrono::seconds(30), "seconds to wait for the TCP connection");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);
  // [snippet trust]
  auto trust = caPath.empty() ? tls::platformTrust() : tls::trustRootFromPath(findDataFile(caPath));
  auto options = trust ? tls::optionsForClientTLS(hostname.empty() ? host : hostname, *trust)
                       : tls::TLSOptions(trust.status());
  // [end snippet]
  if (!options) {
    std::fprintf(stderr, "check_server_certificate: %s\n", options.status().message().c_str());
    return 2;
  }
  return react([&](Shard& reactor) -> Deferred<int> {
    SSL4ClientEndpoint endpoint(reactor, host, port, options, {.timeout = timeout},
                                {.waitForHandshake = false});
    Deferred<int> done;
    auto shown = co_await connectProtocol<ShowCertificate>(endpoint, done);
    if (!shown) {
      std::printf("BAD: %s\n", shown.status().message().c_str());
      co_return 1;
    }
    co_return co_await done;
  });
}
