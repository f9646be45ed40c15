// alpn_client: the C++ counterpart of Twisted's tls_alpn_npn_client.py: connects to alpn_server,
// offers h2 and http/1.1 over ALPN and NPN, verifies that the server is "example.com" according
// to the authority in certs/public.pem, prints the negotiated protocol ("negotiated: h2", or
// "negotiated: none"), sends a short message, waits for the echo, closes and exits 0. A failed
// handshake (e.g. no protocol in common) prints why and exits 1.
//
// The original had to send data and wait for the reply to know the handshake was over; here
// handshakeCompleted() says so.
//
//   bazel run //examples:alpn_server &
//   bazel run //examples:alpn_client                          # negotiated: h2
//   bazel run //examples:alpn_client -- --protocols http/1.1  # negotiated: http/1.1
#include <string>
#include <vector>

#include "examples/echo_protocols.h"

using namespace whorl;

namespace {

// The start of the HTTP/2 client preface (RFC 7540 §3.5), as the original sends.
constexpr std::string_view kTriggerData = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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

// The connect result comes after the handshake (SSL4ClientEndpoint's default), so a failed
// handshake is reported there ("connection failed: ...") and never reaches this protocol.
class BasicH2Request : public Protocol {
 public:
  explicit BasicH2Request(Deferred<int> done) : done_(std::move(done)) {}

  void handshakeCompleted() override {
    auto proto = transport()->negotiatedProtocol();
    std::printf("negotiated: %s\n", proto ? proto->c_str() : "none");
    transport()->write(kTriggerData);
  }
  void dataReceived(std::string_view) override {
    complete_ = true;
    transport()->loseConnection();
  }
  void connectionLost(const Status& reason) override {
    // A closed connection after the handshake is fine (the server may close first).
    bool failed = !complete_ && !reason.isCleanClose();
    if (failed) std::printf("connection lost: %s\n", reason.message().c_str());
    done_.callback(failed ? 1 : 0);
  }

 private:
  Deferred<int> done_;
  bool complete_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Flags flags("alpn_client",
              "TLS client that prints the protocol negotiated with ALPN/NPN (Twisted's "
              "tls_alpn_npn_client.py).");
  auto& host = flags.add("host", "localhost", "server to connect to");
  auto& port = flags.add("port", 8000, "server TCP port");
  auto& caPath = flags.add("ca", "certs/public.pem", "PEM file with the trusted authority");
  auto& hostname = flags.add("hostname", "example.com", "name the server certificate must prove");
  auto& protocols =
      flags.add("protocols", "h2,http/1.1",
                "protocols to offer, comma-separated, most preferred first (empty: offer none)");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);
  return react([&](Shard& reactor) -> Deferred<int> {
    WHORL_CO_TRY(auto authority, tls::Certificate::loadPEMFile(findDataFile(caPath)));
    // [snippet alpn-client]
    tls::TLSOptions options =
        tls::optionsForClientTLS(hostname, authority, std::nullopt, splitProtocols(protocols));
    // [end snippet]
    if (!options) co_return options.status();
    Deferred<int> done;
    auto client = co_await connectProtocol<BasicH2Request>(
        SSL4ClientEndpoint(reactor, host, port, options), done);
    if (!client) co_return examples::connectionFailed(client.status());
    co_return co_await done;
  });
}
