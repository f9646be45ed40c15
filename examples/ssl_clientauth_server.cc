// ssl_clientauth_server: the C++ counterpart of the seed's ssl_clientauth_server.py: the Echo
// protocol over TLS on port 8000 with the identity of certs/server.pem, requiring every client to
// present a certificate anchored in the authority of certs/public.pem (certificate.options(authority)).
// A client without such a certificate gets nothing echoed: the handshake fails and the server
// closes the connection.
//
//   bazel run //examples:ssl_clientauth_server -- --port 8000
//   bazel run //examples:ssl_clientauth_client               # receive: Hello, world! ...
//   bazel run //examples:echoclient_ssl                      # no client certificate: nothing echoed
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
  std::string caPath = "certs/public.pem";
  double drain = 10;
  Flags flags("ssl_clientauth_server",
              "TLS echo server that requires client certificates (the seed's "
              "ssl_clientauth_server.py).");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("cert", &certPath, "PEM file with the server's private key and certificate");
  flags.add("ca", &caPath, "PEM file with the authority client certificates must be anchored in");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.add("drain-timeout", &drain, "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.parseOrExit(argc, argv);

  auto authority = tls::Certificate::loadPEMFile(examples::findFile(caPath));
  if (!authority) {
    std::fprintf(stderr, "ssl_clientauth_server: %s\n", authority.status().message().c_str());
    return 1;
  }
  auto certificate = tls::PrivateCertificate::loadPEMFile(examples::findFile(certPath));
  if (!certificate) {
    std::fprintf(stderr, "ssl_clientauth_server: %s\n", certificate.status().message().c_str());
    return 1;
  }
  reactor::RuntimeOptions ro;
  ro.shards = shards;
  ro.drainTimeout = std::chrono::milliseconds(static_cast<long>(drain * 1000));
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "ssl_clientauth_server: %s\n", s.message().c_str());
    return 1;
  }
  auto listening = endpoint::listenSSL(runtime, static_cast<uint16_t>(port),
                                       api::Factory::forProtocol<examples::Echo>(),
                                       certificate->options({*authority}), interface);
  if (!listening) {
    std::fprintf(stderr, "ssl_clientauth_server: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo,
            "TLS echo server (client certificates required, anchored in %s) listening on %s as %s "
            "with %d shard%s; stop with Ctrl-C",
            authority->toString().c_str(), (*listening)->getHost().toString().c_str(),
            certificate->toString().c_str(), runtime.shardCount(),
            runtime.shardCount() == 1 ? "" : "s");
  return runtime.run();
}
