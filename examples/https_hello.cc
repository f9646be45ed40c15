// https_hello: a minimal HTTP/1.1 server over TLS for curl, wrk and comparisons with nginx. Any
// GET (or HEAD) of any path answers 200 "hello world\n"; other methods get 405. Connections are
// kept alive (HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"),
// pipelined requests are answered in order, request bodies (Content-Length) are skipped. Parsing
// and its errors are framework/http's RequestReceiver: what it cannot serve gets 400, 414, 431,
// 501 or 505 with the cause, and the connection is closed. A connection that brings no complete
// request for --idle-timeout (default 60 s) is closed, and the close is logged with that reason.
// ALPN offers http/1.1 and http/1.0 (like nginx; a client offering neither fails the handshake).
//
//   bazel run -c opt //examples:https_hello -- --port 8443 --shards 4
//   curl --cacert certs/public.pem --resolve example.com:8443:127.0.0.1 https://example.com:8443/
//   wrk -t4 -c64 -d10s https://127.0.0.1:8443/
//
// Per request the parser only looks at string_views of the received bytes (no allocation unless
// a request is split across reads) and the answer is one write of a prebuilt response.
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include "framework/api/timeout_mixin.h"
#include "framework/base/files.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/http/request_receiver.h"
#include "framework/http/response.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"

using namespace whorl;

namespace {

// The answers, built before the shards start: [GET, HEAD, other][Connection field].
struct Answers {
  std::string text[3][3];
  Answers() {
    for (int kind = 0; kind < 3; ++kind) {
      for (int c = 0; c < 3; ++c) {
        std::string_view body = kind == 2 ? "method not allowed\n" : "hello world\n";
        http::ResponseHead head;
        head.contentType = "text/plain";
        head.contentLength = body.size();
        if (kind == 2) {
          head.status = 405;
          head.fields = "Allow: GET, HEAD\r\n";
        }
        head.connection = static_cast<http::ConnectionField>(c);
        text[kind][c] = http::formatResponseHead(head) + std::string(kind == 1 ? "" : body);
      }
    }
  }
};
const Answers answers;

class HelloHttp : public api::TimeoutMixin<http::RequestReceiver> {
 public:
  explicit HelloHttp(std::chrono::milliseconds idleTimeout) : idleTimeout_(idleTimeout) {}
  void connectionMade() override { setTimeout(idleTimeout_); }
  void requestReceived(const http::Request& request) override {
    resetTimeout();
    int kind = request.method == "GET" ? 0 : request.method == "HEAD" ? 1 : 2;
    transport()->write(answers.text[kind][static_cast<int>(http::connectionField(request))]);
    if (!request.keepAlive()) transport()->loseConnection();
  }
  void bodyReceived(std::string_view) override { resetTimeout(); }

 private:
  std::chrono::milliseconds idleTimeout_;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 8000;
  int shards = 0;
  std::string interface;
  std::string certPath = "certs/server.pem";
  double drain = 10;
  std::chrono::milliseconds idleTimeout = std::chrono::seconds(60);
  Flags flags("https_hello", "Minimal HTTP/1.1 keep-alive server over TLS: GET answers hello world.");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("cert", &certPath, "PEM file with the private key and certificate");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.add("drain-timeout", &drain, "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.add("idle-timeout", &idleTimeout,
            "close a connection that sends no complete request for this long (seconds, or with "
            "a unit: 500ms, 2m; 0: never)");
  flags.parseOrExit(argc, argv);

  auto certificate = tls::PrivateCertificate::loadPEMFile(findDataFile(certPath));
  if (!certificate) {
    std::fprintf(stderr, "https_hello: %s\n", certificate.status().message().c_str());
    return 1;
  }
  tls::CertificateOptions options = certificate->options();
  options.acceptableProtocols = {"http/1.1", "http/1.0"};  // as nginx does

  reactor::RuntimeOptions ro;
  ro.shards = shards;
  ro.drainTimeout = std::chrono::milliseconds(static_cast<long>(drain * 1000));
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "https_hello: %s\n", s.message().c_str());
    return 1;
  }
  auto factory = api::Factory::forProtocol<HelloHttp>(idleTimeout);
  auto listening =
      endpoint::listenSSL(runtime, static_cast<uint16_t>(port), factory, options, interface);
  if (!listening) {
    std::fprintf(stderr, "https_hello: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo, "HTTPS hello server listening on %s as %s with %d shard%s; stop with Ctrl-C",
            (*listening)->getHost().toString().c_str(), certificate->toString().c_str(),
            runtime.shardCount(), runtime.shardCount() == 1 ? "" : "s");
  return runtime.run();
}
