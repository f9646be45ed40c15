// echoserv_ssl: the C++ counterpart of the seed's echoserv_ssl.py: the Echo protocol over TLS on
// port 8000, with the key and certificate of certs/server.pem.
//
//   bazel run //examples:echoserv_ssl -- --port 8000 --shards 2
//   openssl s_client -connect localhost:8000 -CAfile certs/public.pem -verify_hostname example.com
#include <cstdio>

#include "examples/echo_protocols.h"
#include "examples/files.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"

using namespace whorl;

int main(int argc, char** argv) {
  int port = 8000;
  int shards = 0;
  std::string interface;
  std::string certPath = "certs/server.pem";
  double drain = 10;
  Flags flags("echoserv_ssl", "TLS echo server (the seed's echoserv_ssl.py).");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("cert", &certPath, "PEM file with the private key and certificate");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.add("drain-timeout", &drain, "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.parseOrExit(argc, argv);

  auto certificate = tls::PrivateCertificate::loadPEMFile(examples::findFile(certPath));
  if (!certificate) {
    std::fprintf(stderr, "echoserv_ssl: %s\n", certificate.status().message().c_str());
    return 1;
  }
  reactor::RuntimeOptions ro;
  ro.shards = shards;
  ro.drainTimeout = std::chrono::milliseconds(static_cast<long>(drain * 1000));
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "echoserv_ssl: %s\n", s.message().c_str());
    return 1;
  }
  auto listening = endpoint::listenSSL(runtime, static_cast<uint16_t>(port),
                                       api::Factory::forProtocol<examples::Echo>(),
                                       certificate->options(), interface);
  if (!listening) {
    std::fprintf(stderr, "echoserv_ssl: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo, "TLS echo server listening on %s as %s with %d shard%s; stop with Ctrl-C",
            (*listening)->getHost().toString().c_str(), certificate->toString().c_str(),
            runtime.shardCount(), runtime.shardCount() == 1 ? "" : "s");
  return runtime.run();
}
