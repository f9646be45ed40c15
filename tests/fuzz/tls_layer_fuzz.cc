// Fuzz target: the TLS layer (framework/tls/tls_layer.h) as a hostile peer sees it: its record
// framing, and the kernel TLS paths (exact reads up to a record boundary, the hand-over, control
// records that the kernel delivers by cmsg: alerts, KeyUpdate, NewSessionTicket).
//
// The layer runs over FakeLower, an in-memory api::LowerTransport that honours read limits and
// can play the kernel: it "installs" keys at the end of the turn, then delivers plaintext and
// control records as the kernel would. The first input byte chooses:
//   bit 0  0: the rest is raw bytes from the peer (a ClientHello or ServerHello that is anything)
//          1: a real handshake first (the peer is a TlsSession), then the rest is a list of
//             events [kind][length][bytes]: peer application data (encrypted by the peer, or as
//             the kernel's plaintext once the kernel decrypts), a control record (first byte its
//             type), raw bytes into the stream, or the application writing / closing.
//   bit 1  the transport offers kernel TLS (else userspace only)
//   bit 2  the layer is the client (else the server)
//   bit 3  the peer stops at TLS 1.2
//   bit 4  the kernel refuses a receive rekey (a KeyUpdate on a kernel before 6.14)
//   bit 5  the kernel takes the sending key only (receiving stays in userspace)
// Whole, byte by byte and random chunks of every byte stream must give the same result: what the
// application received, the records written (type and length: the bytes are random), control
// records and rekeys sent, the failure and how the connection closed.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "framework/api/lower_transport.h"
#include "framework/api/protocol.h"
#include "framework/base/log.h"
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "framework/tls/session.h"
#include "framework/tls/tls_layer.h"
#include "tests/fake_transport.h"
#include "tests/tls/fake_kernel_lower.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace whorl;

// The application above the layer: records what it sees.
struct AppLog {
  std::string events;
  std::string data;
};

class App final : public api::Protocol {
 public:
  explicit App(AppLog* log) : log_(log) {}
  void connectionMade() override { log_->events += "app connected\n"; }
  void dataReceived(std::string_view data) override { log_->data.append(data); }
  void handshakeCompleted() override { log_->events += "app handshake completed\n"; }
  void connectionLost(const Status& reason) override {
    log_->events += "app lost: " + reason.message() + "\n";
  }

 private:
  AppLog* log_;
};

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  fuzz::check(in.good() || in.eof(), "certs/test is readable (run from the repository root)");
  return ss.str();
}

struct Contexts {
  std::shared_ptr<tls::TlsContext> server;
  std::shared_ptr<tls::TlsContext> client;
  std::shared_ptr<tls::TlsContext> server12;  // at most TLS 1.2 (peers)
  std::shared_ptr<tls::TlsContext> client12;
  // ktls=require: the only way to have OpenSSL's secrets on a kernel without TLS (auto checks
  // the kernel and skips them). Used when FakeLower offers kernel TLS.
  std::shared_ptr<tls::TlsContext> serverKernel;
  std::shared_ptr<tls::TlsContext> clientKernel;
};

// The identity: certs/test (RSA, so that signatures and hence record lengths do not vary).
const Contexts& contexts() {
  static const Contexts c = [] {
    std::string pem =
        readFile("certs/test/localhost-rsa.pem") + readFile("certs/test/intermediate.pem");
    auto id = tls::PrivateCertificate::loadPEM(pem);
    fuzz::check(id.isOk(), "the test identity loads");
    auto ca = tls::Certificate::loadPEM(readFile("certs/test/ca.pem"));
    fuzz::check(ca.isOk(), "the test CA loads");
    Contexts out;
    tls::CertificateOptions so = id->options();
    out.server = *so.context();
    so.ktls = tls::KtlsMode::kRequire;
    out.serverKernel = *so.context();
    so.ktls = tls::KtlsMode::kAuto;
    so.lowerMaximumSecurityTo = tls::TLSVersion::TLSv1_2;
    out.server12 = *so.context();
    auto root = tls::trustRootFromCertificates({*ca});
    // No resumption: every run must start from the same state (a resumed handshake is shorter).
    tls::ClientTLSExtras extras;
    extras.resumeSessions = false;
    out.client = tls::optionsForClientTLS("localhost", root, std::nullopt, {}, extras).context();
    extras.ktls = tls::KtlsMode::kRequire;
    out.clientKernel =
        tls::optionsForClientTLS("localhost", root, std::nullopt, {}, extras).context();
    extras.ktls = tls::KtlsMode::kAuto;
    extras.lowerMaximumSecurityTo = tls::TLSVersion::TLSv1_2;
    out.client12 = tls::optionsForClientTLS("localhost", root, std::nullopt, {}, extras).context();
    fuzz::check(out.server && out.server12 && out.client && out.client12 && out.serverKernel &&
                    out.clientKernel,
                "contexts build");
    return out;
  }();
  return c;
}

// "type/length" of each record in `bytes` (whole records; a cut one is shown as such).
std::string records(std::string_view bytes) {
  std::string out;
  size_t pos = 0;
  while (pos + 5 <= bytes.size()) {
    auto type = static_cast<unsigned char>(bytes[pos]);
    size_t len = static_cast<unsigned char>(bytes[pos + 3]) << 8 |
                 static_cast<unsigned char>(bytes[pos + 4]);
    out += std::to_string(type) + "/" + std::to_string(len) + " ";
    pos += 5 + len;
  }
  if (pos != bytes.size()) out += "(cut)";
  return out;
}

// Feeds `bytes` to the layer in the chunks `mode` picks (0 whole, 1 bytes, 2 random).
void feed(test::FakeLower& lower, std::string_view bytes, size_t mode) {
  auto cuts = fuzz::cutsFor(bytes);
  cuts[mode].forEach(bytes, [&](std::string_view chunk) {
    if (!lower.closed()) lower.receive(chunk);
  });
}

std::string run(std::string_view input, size_t mode) {
  uint8_t config = static_cast<uint8_t>(input[0]);
  bool events = config & 1;
  test::LowerOptions lo;
  lo.kernelAvailable = (config & 2) != 0;
  bool client = (config & 4) != 0;
  bool peer12 = (config & 8) != 0;
  lo.refuseRxRekey = (config & 16) != 0;
  lo.refuseRx = (config & 32) != 0;
  std::string_view rest = input.substr(1);

  const Contexts& ctx = contexts();
  test::FakeReactor reactor;
  AppLog app;
  test::FakeLower lower(reactor, lo);
  auto layer = std::make_unique<tls::TlsLayer>(lo.kernelAvailable
                                                   ? (client ? ctx.clientKernel : ctx.serverKernel)
                                                   : (client ? ctx.client : ctx.server),
                                               std::make_unique<App>(&app));
  lower.connect(layer.get());
  lower.turn();

  std::unique_ptr<tls::TlsSession> peer;
  if (!events) {
    feed(lower, rest, mode);
  } else {
    auto p = tls::TlsSession::create(client ? (peer12 ? ctx.server12 : ctx.server)
                                            : (peer12 ? ctx.client12 : ctx.client));
    fuzz::check(p.isOk(), "the peer session starts");
    peer = std::move(*p);
    test::handshakeOverLower(lower, *peer);
    lower.events += peer->handshakeDone() ? "handshake done\n" : "handshake not done\n";
    // Events: [kind][length][bytes].
    while (rest.size() >= 2 && !lower.closed()) {
      uint8_t kind = static_cast<uint8_t>(rest[0]) % 5;
      size_t len = std::min<size_t>(static_cast<uint8_t>(rest[1]), rest.size() - 2);
      std::string_view bytes = rest.substr(2, len);
      rest.remove_prefix(2 + len);
      switch (kind) {
        case 0:  // application data from the peer
          if (lower.kernelRx()) {
            feed(lower, bytes, mode);  // the kernel decrypted it
          } else if (peer->handshakeDone() && !bytes.empty()) {
            (void)peer->write(bytes);
            std::string records(peer->output());
            peer->clearOutput();
            feed(lower, records, mode);
          }
          break;
        case 1:  // a control record from the kernel
          if (!bytes.empty()) lower.controlRecord(static_cast<uint8_t>(bytes[0]), bytes.substr(1));
          break;
        case 2:  // raw bytes into the stream
          feed(lower, bytes, mode);
          break;
        case 3:  // the application writes, or closes
          if (bytes.empty()) {
            layer->upper()->loseConnection();
          } else {
            layer->upper()->write(bytes);
          }
          lower.turn();
          break;
        case 4:  // time passes (the handshake timeout, OpenSSL's buffer release)
          reactor.advance(std::chrono::seconds(len));
          lower.turn();
          break;
      }
    }
  }
  lower.lose(lower.closed() ? Status::connectionDone()
                            : Status(Status::Code::kConnectionLost, "the peer went away"));
  layer.reset();
  fuzz::check(reactor.pendingTimers() == 0, "no timer outlives the layer");
  return lower.events + app.events + "app data '" + fuzz::escape(app.data) + "'\nrecords " +
         records(lower.ciphertext()) + "\nkernel plaintext '" +
         fuzz::escape(lower.kernelPlaintext()) + "'\n";
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Quiet: every input logs its failures. WHORL_FUZZ_SHOW=1 shows the debug log too.
  whorl::log::setLevel(std::getenv("WHORL_FUZZ_SHOW") != nullptr ? whorl::log::Level::kDebug
                                                                 : whorl::log::Level::kOff);
  (void)contexts();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input = fuzz::asText(data, size);
  std::string whole = run(input, 0);
  // WHORL_FUZZ_SHOW=1: print what an input does (to check that a seed reaches its path).
  static const bool show = std::getenv("WHORL_FUZZ_SHOW") != nullptr;
  if (show) std::fprintf(stderr, "%s\n", whole.c_str());
  const char* names[] = {"whole", "bytes", "random"};
  for (size_t mode = 1; mode < 3; ++mode) {
    std::string other = run(input, mode);
    if (other != whole) {
      std::fprintf(stderr,
                   "fuzz: the TLS layer differs when streams are fed in %s chunks\n"
                   "--- whole:\n%s\n--- %s:\n%s\n",
                   names[mode], whole.c_str(), names[mode], other.c_str());
      std::abort();
    }
  }
  return 0;
}
