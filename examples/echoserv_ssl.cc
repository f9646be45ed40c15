// echoserv_ssl: the C++ counterpart of the seed's echoserv_ssl.py: the Echo protocol over TLS on
// port 8000, with the key and certificate of certs/server.pem.
//
//   bazel run //examples:echoserv_ssl -- --port 8000 --shards 2
//   openssl s_client -connect localhost:8000 -CAfile certs/public.pem -verify_hostname example.com
#include "examples/echo_protocols.h"

using namespace whorl;

int main(int argc, char** argv) {
  Flags flags("echoserv_ssl", "TLS echo server (the seed's echoserv_ssl.py).");
  auto& port = flags.add("port", 8000, "TCP port to listen on");
  auto& interface =
      flags.add("interface", "", "address to listen on (default: all IPv4 interfaces)");
  auto& certPath =
      flags.add("cert", "certs/server.pem", "PEM file with the private key and certificate");
  auto& shards = flags.add("shards", 0, "reactor threads; 0 means one per online CPU");
  auto& drain = flags.add("drain-timeout", std::chrono::seconds(10),
                          "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.parseOrExit(argc, argv);
  // [snippet server]
  return react([&](Shard& reactor) -> Deferred<void> {
    WHORL_CO_TRY(auto certificate, tls::PrivateCertificate::loadPEMFile(findDataFile(certPath)));
    WHORL_CO_TRY(auto listening, listenSSL(reactor, port, Factory::forProtocol<examples::Echo>(),
                                           certificate.options(), interface));
    WHORL_LOG(kInfo, "TLS echo server listening on %s as %s; stop with Ctrl-C",
              listening->getHost().toString().c_str(), certificate.toString().c_str());
    co_return co_await reactor.whenStopping();  // serve until SIGINT/SIGTERM
  }, {.runtime = {.shards = shards, .drainTimeout = drain}});
  // [end snippet]
}
