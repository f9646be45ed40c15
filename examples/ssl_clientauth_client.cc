// ssl_clientauth_client: the C++ counterpart of the seed's ssl_clientauth_client.py: the echo
// client of echoclient_ssl, presenting certs/server.pem as its client certificate while still
// verifying that the server is "example.com" according to the authority in certs/public.pem.
//
//   bazel run //examples:ssl_clientauth_server &
//   bazel run //examples:ssl_clientauth_client
//   receive: Hello, world!
//   receive: What a fine day it is.
//   receive: Bye-bye!
//   connection lost: Connection was closed cleanly.
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
  std::string certPath = "certs/server.pem";
  std::string caPath = "certs/public.pem";
  std::string hostname = "example.com";
  Flags flags("ssl_clientauth_client",
              "TLS echo client with a client certificate (the seed's ssl_clientauth_client.py).");
  flags.add("host", &host, "server to connect to");
  flags.add("port", &port, "server TCP port");
  flags.add("cert", &certPath, "PEM file with the client's private key and certificate");
  flags.add("ca", &caPath, "PEM file with the trusted authority");
  flags.add("hostname", &hostname, "name the server certificate must prove");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);

  auto clientCertificate = tls::PrivateCertificate::loadPEMFile(examples::findFile(certPath));
  if (!clientCertificate) {
    std::fprintf(stderr, "ssl_clientauth_client: %s\n",
                 clientCertificate.status().message().c_str());
    return 1;
  }
  auto authority = tls::Certificate::loadPEMFile(examples::findFile(caPath));
  if (!authority) {
    std::fprintf(stderr, "ssl_clientauth_client: %s\n", authority.status().message().c_str());
    return 1;
  }
  tls::TLSOptions options = tls::optionsForClientTLS(hostname, *authority, *clientCertificate);
  if (!options) {
    std::fprintf(stderr, "ssl_clientauth_client: %s\n", options.status().message().c_str());
    return 1;
  }
  int exitCode = 0;
  reactor::Runtime runtime({.shards = 1});
  // Report the connection once TCP is up (as Twisted does): TLS failures reach connectionLost.
  endpoint::TlsClientConnectOptions connectOptions;
  connectOptions.waitForHandshake = false;
  endpoint::SSL4ClientEndpoint endpoint(runtime.shard(0), host, static_cast<uint16_t>(port),
                                        options, {}, connectOptions);
  endpoint.connect(api::Factory::forProtocol<examples::EchoClient>(&exitCode),
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
