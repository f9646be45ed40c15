// starttls_client: the C++ port of the seed's starttls_client.py. Sends "plain text" and
// "STARTTLS", waits for READY, switches the connection to TLS (verifying "example.com" with
// server.pem's certificate as the authority), sends "secure text" and closes.
//
//   bazel run //examples:starttls_client
//   received: READY
#include <cstdio>

#include "examples/echo_protocols.h"

using namespace whorl;

namespace {

// [snippet starttls-client]
class StartTLSClient : public LineReceiver {
 public:
  StartTLSClient(tls::TLSOptions options, Deferred<int> done)
      : options_(std::move(options)), done_(std::move(done)) {}

  void connectionMade() override {
    sendLine("plain text");
    sendLine("STARTTLS");
  }
  void lineReceived(std::string_view line) override {
    std::printf("received: %.*s\n", static_cast<int>(line.size()), line.data());
    if (line == "READY") {
      if (Status s = transport()->startTLS(options_); !s.isOk()) {
        std::printf("startTLS failed: %s\n", s.message().c_str());
        transport()->abortConnection();
        return;
      }
      sendLine("secure text");  // queued, and sent encrypted once the handshake is done
      transport()->loseConnection();
    }
  }
  void handshakeCompleted() override { secured_ = true; }
  void connectionLost(const Status& reason) override {
    bool ok = secured_ && reason.isCleanClose();
    if (!ok) std::printf("connection lost: %s\n", reason.message().c_str());
    done_.callback(ok ? 0 : 1);
  }

 private:
  tls::TLSOptions options_;
  Deferred<int> done_;
  bool secured_ = false;
};
// [end snippet]

}  // namespace

int main(int argc, char** argv) {
  Flags flags("starttls_client",
              "Line client that switches to TLS after READY (the seed's starttls_client.py).");
  auto& host = flags.add("host", "localhost", "server to connect to");
  auto& port = flags.add("port", 8000, "server TCP port");
  auto& caPath = flags.add("ca", "certs/server.pem",
                           "PEM with the certificate to trust for example.com (the seed uses "
                           "server.pem)");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);
  return react([&](Shard& reactor) -> Deferred<int> {
    WHORL_CO_TRY(auto authority, tls::Certificate::loadPEMFile(findDataFile(caPath)));
    // [snippet starttls-client-main]
    Deferred<int> done;
    auto client = co_await connectProtocol<StartTLSClient>(
        HostnameEndpoint(reactor, host, port), tls::optionsForClientTLS("example.com", authority),
        done);
    // [end snippet]
    if (!client) co_return examples::connectionFailed(client.status());
    co_return co_await done;
  });
}
