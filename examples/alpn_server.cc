// alpn_server: the C++ counterpart of Twisted's tls_alpn_npn_server.py: a TLS server that offers
// the application protocols h2 and http/1.1 (in that order of preference) over ALPN and NPN and
// prints, for each connection, which one was negotiated ("negotiated: h2", or "negotiated: none"
// when the client offered nothing). Like the original, it echoes the first data it receives and
// then closes the connection. A client whose list shares nothing with ours fails the handshake.
//
//   bazel run //examples:alpn_server -- --port 8000 --protocols h2,http/1.1
//   bazel run //examples:alpn_client                                # negotiated: h2
//   openssl s_client -connect localhost:8000 -alpn http/1.1         # or -nextprotoneg
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

// "h2,http/1.1" -> {"h2", "http/1.1"}; empty items are dropped, so "" offers nothing.
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

// The seed's NPNPrinterProtocol, told about the end of the handshake instead of guessing it from
// the first data.
class NPNPrinter : public api::Protocol {
 public:
  // [snippet negotiated]
  void handshakeCompleted() override {
    handshook_ = true;
    auto proto = transport()->negotiatedProtocol();
    std::printf("negotiated: %s\n", proto ? proto->c_str() : "none");
    std::fflush(stdout);
  }
  // [end snippet]
  void dataReceived(std::string_view data) override {
    transport()->write(data);
    complete_ = true;
    transport()->loseConnection();
  }
  void connectionLost(const Status& reason) override {
    if (complete_) return;
    if (!handshook_) {
      std::printf("handshake failed: %s\n", reason.message().c_str());
    } else if (!reason.isCleanClose()) {
      std::printf("connection lost: %s\n", reason.message().c_str());
    }
    std::fflush(stdout);
  }

 private:
  bool handshook_ = false;
  bool complete_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  int port = 8000;
  int shards = 0;
  std::string interface;
  std::string certPath = "certs/server.pem";
  std::string protocols = "h2,http/1.1";
  double drain = 10;
  Flags flags("alpn_server",
              "TLS server that prints the protocol negotiated with ALPN/NPN (Twisted's "
              "tls_alpn_npn_server.py).");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("cert", &certPath, "PEM file with the private key and certificate");
  flags.add("protocols", &protocols,
            "protocols to accept, comma-separated, most preferred first (empty: offer none)");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.add("drain-timeout", &drain, "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.parseOrExit(argc, argv);

  auto certificate = tls::PrivateCertificate::loadPEMFile(findDataFile(certPath));
  if (!certificate) {
    std::fprintf(stderr, "alpn_server: %s\n", certificate.status().message().c_str());
    return 1;
  }
  tls::CertificateOptions options = certificate->options();
  options.acceptableProtocols = splitProtocols(protocols);

  reactor::RuntimeOptions ro;
  ro.shards = shards;
  ro.drainTimeout = std::chrono::milliseconds(static_cast<long>(drain * 1000));
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "alpn_server: %s\n", s.message().c_str());
    return 1;
  }
  auto listening = endpoint::listenSSL(runtime, static_cast<uint16_t>(port),
                                       api::Factory::forProtocol<NPNPrinter>(), options, interface);
  if (!listening) {
    std::fprintf(stderr, "alpn_server: %s\n", listening.status().message().c_str());
    return 1;
  }
  unsigned mechanisms = tls::protocolNegotiationMechanisms();
  WHORL_LOG(kInfo,
            "ALPN/NPN server listening on %s as %s offering [%s] (this OpenSSL: %s%s%s) with %d "
            "shard%s; stop with Ctrl-C",
            (*listening)->getHost().toString().c_str(), certificate->toString().c_str(),
            protocols.c_str(), (mechanisms & tls::kALPN) ? "ALPN" : "",
            (mechanisms & tls::kALPN) && (mechanisms & tls::kNPN) ? "+" : "",
            (mechanisms & tls::kNPN) ? "NPN" : "", runtime.shardCount(),
            runtime.shardCount() == 1 ? "" : "s");
  return runtime.run();
}
