// echoclient_ssl: the C++ counterpart of the seed's echoclient_ssl.py: connects to localhost,
// verifies that the server is "example.com" according to the authority in certs/public.pem, and
// runs the echo client protocol.
//
//   bazel run //examples:echoclient_ssl
//   receive: Hello, world!
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
  std::string host = "localhost";
  std::string caPath = "certs/public.pem";
  std::string hostname = "example.com";
  Flags flags("echoclient_ssl", "TLS echo client (the seed's echoclient_ssl.py).");
  flags.add("host", &host, "server to connect to");
  flags.add("port", &port, "server TCP port");
  flags.add("ca", &caPath, "PEM file with the trusted authority");
  flags.add("hostname", &hostname, "name the server certificate must prove");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);

  auto authority = tls::Certificate::loadPEMFile(examples::findFile(caPath));
  if (!authority) {
    std::fprintf(stderr, "echoclient_ssl: %s\n", authority.status().message().c_str());
    return 1;
  }
  tls::TLSOptions options = tls::optionsForClientTLS(hostname, *authority);
  if (!options) {
    std::fprintf(stderr, "echoclient_ssl: %s\n", options.status().message().c_str());
    return 1;
  }
  int exitCode = 0;
  reactor::Runtime runtime({.shards = 1});
  // Like Twisted's endpoint, report the connection once TCP is up: a TLS failure then reaches
  // the protocol's connectionLost (printed once), not the connect callback as well.
  endpoint::TlsClientConnectOptions connectOptions;
  connectOptions.waitForHandshake = false;
  endpoint::SSL4ClientEndpoint endpoint(runtime.shard(0), host, static_cast<uint16_t>(port),
                                        options, {}, connectOptions);
  endpoint.connect(api::Factory::forProtocol<examples::EchoClient>(&exitCode),
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
