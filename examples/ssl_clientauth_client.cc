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
#include "examples/echo_protocols.h"

using namespace whorl;

int main(int argc, char** argv) {
  Flags flags("ssl_clientauth_client",
              "TLS echo client with a client certificate (the seed's ssl_clientauth_client.py).");
  auto& host = flags.add("host", "localhost", "server to connect to");
  auto& port = flags.add("port", 8000, "server TCP port");
  auto& certPath = flags.add("cert", "certs/server.pem",
                             "PEM file with the client's private key and certificate");
  auto& caPath = flags.add("ca", "certs/public.pem", "PEM file with the trusted authority");
  auto& hostname = flags.add("hostname", "example.com", "name the server certificate must prove");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);
  return react([&](Shard& reactor) -> Deferred<int> {
    WHORL_CO_TRY(auto clientCert, tls::PrivateCertificate::loadPEMFile(findDataFile(certPath)));
    WHORL_CO_TRY(auto authority, tls::Certificate::loadPEMFile(findDataFile(caPath)));
    // [snippet clientcert]
    auto options = tls::optionsForClientTLS(hostname, authority, clientCert);
    // [end snippet]
    SSL4ClientEndpoint endpoint(reactor, host, port, options, {}, {.waitForHandshake = false});
    Deferred<int> done;
    auto echoClient = co_await connectProtocol<examples::EchoClient>(endpoint, done);
    if (!echoClient) co_return examples::connectionFailed(echoClient.status());
    co_return co_await done;
  });
}
