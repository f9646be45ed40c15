// shout: a TLS server that answers each line in upper case, built against whorl from a workspace
// of its own (see WORKSPACE). shout_test.sh checks it; by hand, from this directory:
//
//   bazel run //:shout -- --port 8443 --cert "$PWD/../../certs/server.pem"
//   openssl s_client -crlf -connect localhost:8443 -CAfile ../../certs/public.pem   # type a line
#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>

#include "framework/whorl.h"

using namespace whorl;

class Shout : public api::LineReceiver {
 public:
  void lineReceived(std::string_view line) override {
    std::string upper(line);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    sendLine(upper);
  }
};

int main(int argc, char** argv) {
  int port = 8443;
  int shards = 0;
  std::string interface;
  std::string certPath;
  Flags flags("shout", "TLS server that answers each line in upper case.");
  flags.add("port", &port, "TCP port to listen on (0: any free port)");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("cert", &certPath, "PEM file with the private key and certificate (required)");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.parseOrExit(argc, argv);
  if (certPath.empty()) {
    std::fprintf(stderr, "shout: --cert is required\n");
    return 2;
  }

  auto certificate = tls::PrivateCertificate::loadPEMFile(certPath);
  if (!certificate) {
    std::fprintf(stderr, "shout: %s\n", certificate.status().message().c_str());
    return 1;
  }
  reactor::Runtime runtime({.shards = shards});
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "shout: %s\n", s.message().c_str());
    return 1;
  }
  auto listening = endpoint::listenSSL(runtime, static_cast<uint16_t>(port),
                                       api::Factory::forProtocol<Shout>(),
                                       certificate->options(), interface);
  if (!listening) {
    std::fprintf(stderr, "shout: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo, "shout listening on %s", (*listening)->getHost().toString().c_str());
  return runtime.run();  // until SIGINT/SIGTERM, then open connections get to finish
}
