// alpn_client: the C++ counterpart of Twisted's tls_alpn_npn_client.py: connects to alpn_server,
// offers h2 and http/1.1 over ALPN and NPN, verifies that the server is "example.com" according
// to the authority in certs/public.pem, prints the negotiated protocol ("negotiated: h2", or
// "negotiated: none"), sends a short message, waits for the echo, closes and exits 0. A failed
// handshake (e.g. no protocol in common) prints why and exits 1.
//
// The original had to send data and wait for the reply to know the handshake was over; here
// handshakeCompleted() says so.
//
//   bazel run //examples:alpn_server &
//   bazel run //examples:alpn_client                          # negotiated: h2
//   bazel run //examples:alpn_client -- --protocols http/1.1  # negotiated: http/1.1
#include <cstdio>
#include <string>
#include <vector>

#include "framework/base/files.h"
#include "framework/api/protocol.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"

using namespace whorl;

namespace {

// The start of the HTTP/2 client preface (RFC 7540 §3.5), as the original sends.
constexpr std::string_view kTriggerData = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::vector<std::string> splitProtocols(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

class BasicH2Request : public api::Protocol {
 public:
  explicit BasicH2Request(int* exitCode) : exitCode_(exitCode) {}

  void handshakeCompleted() override {
    handshook_ = true;
    auto proto = transport()->negotiatedProtocol();
    std::printf("negotiated: %s\n", proto ? proto->c_str() : "none");
    std::fflush(stdout);
    transport()->write(kTriggerData);
  }
  void dataReceived(std::string_view) override {
    complete_ = true;
    transport()->loseConnection();
  }
  void connectionLost(const Status& reason) override {
    // A closed connection after the handshake is fine (the server may close first); a failed
    // handshake is not. Failures before the handshake are reported by the connect callback.
    if (handshook_ && !complete_ && !reason.isCleanClose()) {
      std::printf("connection lost: %s\n", reason.message().c_str());
      std::fflush(stdout);
      *exitCode_ = 1;
    }
    if (!handshook_) *exitCode_ = 1;
    transport()->reactor().stop();
  }

 private:
  int* exitCode_;
  bool handshook_ = false;
  bool complete_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 8000;
  std::string host = "localhost";
  std::string caPath = "certs/public.pem";
  std::string hostname = "example.com";
  std::string protocols = "h2,http/1.1";
  Flags flags("alpn_client",
              "TLS client that prints the protocol negotiated with ALPN/NPN (Twisted's "
              "tls_alpn_npn_client.py).");
  flags.add("host", &host, "server to connect to");
  flags.add("port", &port, "server TCP port");
  flags.add("ca", &caPath, "PEM file with the trusted authority");
  flags.add("hostname", &hostname, "name the server certificate must prove");
  flags.add("protocols", &protocols,
            "protocols to offer, comma-separated, most preferred first (empty: offer none)");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);

  auto authority = tls::Certificate::loadPEMFile(findDataFile(caPath));
  if (!authority) {
    std::fprintf(stderr, "alpn_client: %s\n", authority.status().message().c_str());
    return 1;
  }
  tls::TLSOptions options =
      tls::optionsForClientTLS(hostname, *authority, std::nullopt, splitProtocols(protocols));
  if (!options) {
    std::fprintf(stderr, "alpn_client: %s\n", options.status().message().c_str());
    return 1;
  }
  int exitCode = 0;
  reactor::Runtime runtime({.shards = 1});
  endpoint::SSL4ClientEndpoint endpoint(runtime.shard(0), host, static_cast<uint16_t>(port),
                                        options);
  endpoint.connect(api::Factory::forProtocol<BasicH2Request>(&exitCode),
                   [&](Result<api::Protocol*> p) {
                     if (!p) {
                       std::printf("connection failed: %s\n", p.status().message().c_str());
                       std::fflush(stdout);
                       exitCode = 1;
                       runtime.stop();
                     }
                   });
  runtime.run();
  return exitCode;
}
