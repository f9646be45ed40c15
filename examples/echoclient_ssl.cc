// echoclient_ssl: the C++ counterpart of the seed's echoclient_ssl.py: connects to localhost,
// verifies that the server is "example.com" according to the authority in certs/public.pem, and
// runs the echo client protocol.
//
//   bazel run //examples:echoclient_ssl
//   receive: Hello, world!
//
// Like Twisted's endpoint, the connection is reported once TCP is up (waitForHandshake = false): a
// TLS failure then reaches EchoClient::connectionLost, which prints it.
#include "examples/echo_protocols.h"

using namespace whorl;

int main(int argc, char** argv) {
  Flags flags("echoclient_ssl", "TLS echo client (the seed's echoclient_ssl.py).");
  auto& host = flags.add("host", "localhost", "server to connect to");
  auto& port = flags.add("port", 8000, "server TCP port");
  auto& caPath = flags.add("ca", "certs/public.pem", "PEM file with the trusted authority");
  auto& hostname = flags.add("hostname", "example.com", "name the server certificate must prove");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);
  // [snippet client]
  return react([&](Shard& reactor) -> Deferred<int> {
    WHORL_CO_TRY(auto authority, tls::Certificate::loadPEMFile(findDataFile(caPath)));
    auto options = tls::optionsForClientTLS(hostname, authority);
    SSL4ClientEndpoint endpoint(reactor, host, port, options, {}, {.waitForHandshake = false});
    Deferred<int> done;  // EchoClient fires it from connectionLost
    auto echoClient = co_await connectProtocol<examples::EchoClient>(endpoint, done);
    if (!echoClient) co_return examples::connectionFailed(echoClient.status());
    co_return co_await done;
  });
  // [end snippet]
}
