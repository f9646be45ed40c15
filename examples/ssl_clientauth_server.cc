// ssl_clientauth_server: the C++ counterpart of the seed's ssl_clientauth_server.py: the TLS echo
// server of echoserv_ssl, which also requires every client to present a certificate anchored in
// the authority of certs/public.pem (certificate.options(authority) in the seed).
//
//   bazel run //examples:ssl_clientauth_server   # then: bazel run //examples:ssl_clientauth_client
#include "examples/echo_protocols.h"

using namespace whorl;

int main(int argc, char** argv) {
  Flags flags("ssl_clientauth_server",
              "TLS echo server that requires client certificates (the seed's "
              "ssl_clientauth_server.py).");
  auto& port = flags.add("port", 8000, "TCP port to listen on");
  auto& interface =
      flags.add("interface", "", "address to listen on (default: all IPv4 interfaces)");
  auto& certPath = flags.add("cert", "certs/server.pem",
                             "PEM file with the server's private key and certificate");
  auto& caPath = flags.add("ca", "certs/public.pem",
                           "PEM file with the authority client certificates must be anchored in");
  auto& shards = flags.add("shards", 0, "reactor threads; 0 means one per online CPU");
  auto& drain = flags.add("drain-timeout", std::chrono::seconds(10),
                          "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.parseOrExit(argc, argv);
  return react([&](Shard& reactor) -> Deferred<void> {
    WHORL_CO_TRY(auto authority, tls::Certificate::loadPEMFile(findDataFile(caPath)));
    WHORL_CO_TRY(auto certificate, tls::PrivateCertificate::loadPEMFile(findDataFile(certPath)));
    // [snippet clientauth]
    WHORL_CO_TRY(auto listening, listenSSL(reactor, port, Factory::forProtocol<examples::Echo>(),
                                           certificate.options({authority}), interface));
    // [end snippet]
    WHORL_LOG(kInfo, "TLS echo server (client certificates required) listening on %s as %s",
              listening->getHost().toString().c_str(), certificate.toString().c_str());
    co_return co_await reactor.whenStopping();
  }, {.runtime = {.shards = shards, .drainTimeout = drain}});
}
