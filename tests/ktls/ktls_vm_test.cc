// The kernel TLS suite. It runs inside VMs booting stock Debian kernels that have CONFIG_TLS
// (tools/ktls-vm test), because the development kernel lacks it; on a kernel without kTLS every
// test skips itself. Each test asserts the offload itself, not only the data: the transports'
// reported mode and the kernel's own counters in /proc/net/tls_stat. A test that passes after a
// silent fallback to userspace would be a failing test.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <sstream>

#include "framework/endpoint/tls_endpoint.h"
#include "framework/net/ktls_probe.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "framework/tls/session.h"
#include "framework/tls/tls_layer.h"
#include "tests/socket_util.h"

namespace whorl {
namespace {

using namespace std::chrono_literals;

std::string certDir() {
  if (const char* d = std::getenv("WHORL_CERTS")) return d;
  if (const char* s = std::getenv("TEST_SRCDIR")) return std::string(s) + "/whorl/certs";
  return "certs";
}
std::string cert(const std::string& name) { return certDir() + "/" + name; }

std::map<std::string, long> tlsStat() {
  std::map<std::string, long> m;
  std::ifstream in("/proc/net/tls_stat");
  std::string k;
  long v;
  while (in >> k >> v) m[k] = v;
  return m;
}

#define SKIP_WITHOUT_KTLS()                                                              \
  do {                                                                                   \
    if (!net::kernelTlsSupport().isOk()) GTEST_SKIP() << net::kernelTlsSupport().message(); \
  } while (0)

struct Case {
  const char* name;
  tls::TLSVersion version;
  const char* tls12;
  const char* tls13;
};

const Case kCases[] = {
    {"tls13_aes128", tls::TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_AES_128_GCM_SHA256"},
    {"tls13_aes256", tls::TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_AES_256_GCM_SHA384"},
    {"tls13_chacha", tls::TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_CHACHA20_POLY1305_SHA256"},
    {"tls12_aes128", tls::TLSVersion::TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", ""},
    {"tls12_aes256", tls::TLSVersion::TLSv1_2, "ECDHE-ECDSA-AES256-GCM-SHA384", ""},
    {"tls12_chacha", tls::TLSVersion::TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305", ""},
};

// Server protocol: echoes, and reports its mode and how it ended.
struct ServerLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> modes;
  std::vector<Status> losses;
  void mode(std::string m) {
    std::lock_guard<std::mutex> l(mu);
    modes.push_back(std::move(m));
    cv.notify_all();
  }
  void lost(Status s) {
    std::lock_guard<std::mutex> l(mu);
    losses.push_back(std::move(s));
    cv.notify_all();
  }
  Status waitLoss() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, 20s, [&] { return !losses.empty(); });
    return losses.empty() ? Status(Status::Code::kTimeout, "no connectionLost") : losses.back();
  }
};

class ServerEcho : public api::Protocol {
 public:
  explicit ServerEcho(ServerLog* log) : log_(log) {}
  void dataReceived(std::string_view d) override {
    if (!reported_) {
      reported_ = true;
      log_->mode(transport()->tlsMode());
    }
    transport()->write(d);
  }
  void connectionLost(const Status& r) override { log_->lost(r); }

 private:
  ServerLog* log_;
  bool reported_ = false;
};

// Client protocol: sends `payload`, expects it back, records its mode, closes.
struct ClientResult {
  std::string echoed;
  std::string mode;
  Status lost;
};
class ClientEcho : public api::Protocol {
 public:
  ClientEcho(const std::string* payload, std::shared_ptr<std::promise<ClientResult>> done)
      : payload_(payload), done_(std::move(done)) {}
  void handshakeCompleted() override { transport()->write(*payload_); }
  // The whole payload is written at once: keep reading while it drains, or the echo would stall
  // both sides (the default pauses reading above the high-water mark).
  void pauseProducing() override {}
  void resumeProducing() override {}
  void dataReceived(std::string_view d) override {
    if (r_.mode.empty()) r_.mode = transport()->tlsMode();
    r_.echoed.append(d);
    if (r_.echoed.size() >= payload_->size()) transport()->loseConnection();
  }
  void connectionLost(const Status& s) override {
    r_.lost = s;
    done_->set_value(std::move(r_));
  }

 private:
  const std::string* payload_;
  std::shared_ptr<std::promise<ClientResult>> done_;
  ClientResult r_;
};

class KtlsTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    reactor::RuntimeOptions o;
    o.shards = 2;
    o.pinThreads = false;
    rt_ = std::make_unique<reactor::Runtime>(o);
    ASSERT_TRUE(rt_->start().isOk());
  }
  void TearDown() override {
    rt_->stop(0ms);
    rt_->join();
  }
  tls::CertificateOptions serverOptions(const Case& c, tls::KtlsMode mode) {
    auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
    EXPECT_TRUE(pc.isOk()) << pc.status().message();
    auto o = pc->options();
    o.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
    o.acceptableCiphers = *tls::AcceptableCiphers::fromOpenSSLCipherString(c.tls12, c.tls13);
    o.lowerMaximumSecurityTo = c.version;
    o.ktls = mode;
    return o;
  }
  tls::ClientTLSOptions clientOptions(const Case& c, tls::KtlsMode mode) {
    tls::ClientTLSExtras e;
    e.lowerMaximumSecurityTo = c.version;
    e.ktls = mode;
    auto o = tls::optionsForClientTLS(
        "localhost",
        tls::trustRootFromCertificates({*tls::Certificate::loadPEMFile(cert("test/ca.pem"))}), {}, {}, e);
    EXPECT_TRUE(o.isOk()) << o.status().message();
    return *o;
  }
  uint16_t listen(tls::CertificateOptions o) {
    endpoint::TcpServerOptions tcp;
    tcp.interface = "127.0.0.1";
    auto p = endpoint::SSL4ServerEndpoint(*rt_, 0, std::move(o), tcp)
                 .listen(api::Factory::forProtocol<ServerEcho>(&log_));
    EXPECT_TRUE(p.isOk()) << p.status().message();
    ports_.push_back(std::move(p.value()));
    return ports_.back()->getHost().port();
  }
  ClientResult echo(uint16_t port, tls::ClientTLSOptions o, const std::string& payload) {
    auto done = std::make_shared<std::promise<ClientResult>>();
    auto connected = std::make_shared<std::promise<Status>>();
    endpoint::SSL4ClientEndpoint(rt_->shard(0), "127.0.0.1", port, o)
        .connect(api::Factory::forProtocol<ClientEcho>(&payload, done),
                 [connected](Result<api::Protocol*> r) { connected->set_value(r.status()); });
    auto cs = connected->get_future();
    if (cs.wait_for(20s) != std::future_status::ready) return {"", "", Status(Status::Code::kTimeout, "connect")};
    Status s = cs.get();
    if (!s.isOk()) return {"", "", s};
    auto f = done->get_future();
    if (f.wait_for(60s) != std::future_status::ready) return {"", "", Status(Status::Code::kTimeout, "echo")};
    return f.get();
  }

  std::unique_ptr<reactor::Runtime> rt_;
  std::vector<std::unique_ptr<endpoint::ListeningPort>> ports_;
  ServerLog log_;
};

TEST_P(KtlsTest, BothSidesInKernelEchoSixtyFourMebibytes) {
  SKIP_WITHOUT_KTLS();
  const Case& c = GetParam();
  auto before = tlsStat();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
  std::string payload = testutil::randomBytes(64 << 20, 17);
  ClientResult r = echo(port, clientOptions(c, tls::KtlsMode::kRequire), payload);
  EXPECT_TRUE(r.lost.isCleanClose()) << r.lost.toString();
  EXPECT_EQ(r.echoed.size(), payload.size());
  EXPECT_TRUE(r.echoed == payload);
  EXPECT_EQ(r.mode, "kernel TX+RX");
  {
    std::lock_guard<std::mutex> l(log_.mu);
    ASSERT_FALSE(log_.modes.empty());
    EXPECT_EQ(log_.modes[0], "kernel TX+RX");
  }
  EXPECT_TRUE(log_.waitLoss().isCleanClose()) << "the server saw our close_notify";
  auto after = tlsStat();
  EXPECT_GE(after["TlsTxSw"] - before["TlsTxSw"], 2) << "two sockets offloaded TX in software";
  EXPECT_GE(after["TlsRxSw"] - before["TlsRxSw"], 2);
  EXPECT_EQ(after["TlsDecryptError"], before["TlsDecryptError"]);
}

TEST_P(KtlsTest, KernelServerAgainstUserspaceClient) {
  SKIP_WITHOUT_KTLS();
  const Case& c = GetParam();
  auto before = tlsStat();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
  std::string payload = testutil::randomBytes(4 << 20, 5);
  ClientResult r = echo(port, clientOptions(c, tls::KtlsMode::kOff), payload);
  EXPECT_TRUE(r.echoed == payload) << r.lost.toString();
  EXPECT_EQ(r.mode, "userspace");
  EXPECT_TRUE(log_.waitLoss().isCleanClose());
  auto after = tlsStat();
  EXPECT_GE(after["TlsTxSw"] - before["TlsTxSw"], 1);
  EXPECT_GE(after["TlsRxSw"] - before["TlsRxSw"], 1);
}

TEST_P(KtlsTest, KernelClientAgainstUserspaceServer) {
  SKIP_WITHOUT_KTLS();
  const Case& c = GetParam();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kOff));
  std::string payload = testutil::randomBytes(4 << 20, 6);
  ClientResult r = echo(port, clientOptions(c, tls::KtlsMode::kRequire), payload);
  EXPECT_TRUE(r.echoed == payload) << r.lost.toString();
  EXPECT_EQ(r.mode, "kernel TX+RX");
  {
    std::lock_guard<std::mutex> l(log_.mu);
    EXPECT_EQ(log_.modes.at(0), "userspace");
  }
}

INSTANTIATE_TEST_SUITE_P(Ciphers, KtlsTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// A raw TLS 1.3 client (TlsSession over a blocking socket) for what a framework peer would never
// send: corrupted records and KeyUpdate.
class RawClient {
 public:
  RawClient(uint16_t port, tls::ClientTLSOptions o) {
    fd_ = testutil::connectTo(port);
    session_ = std::move(tls::TlsSession::create(o.context).value());
  }
  ~RawClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool handshake() {
    bool done = false;
    for (int i = 0; i < 50 && !done; ++i) {
      if (!session_->advanceHandshake(&done).isOk()) return false;
      flush();
      if (done) break;
      char buf[16384];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      session_->beginInput(std::string_view(buf, static_cast<size_t>(n)));
      if (!session_->advanceHandshake(&done).isOk()) return false;
      session_->endInput();
      flush();
    }
    return done;
  }
  void flush() {
    testutil::sendAll(fd_, session_->output());
    session_->clearOutput();
  }
  int fd() const { return fd_; }
  tls::TlsSession& session() { return *session_; }

 private:
  int fd_ = -1;
  std::unique_ptr<tls::TlsSession> session_;
};

TEST_F(KtlsTest, CorruptedRecordAbortsWithAClearReason) {
  SKIP_WITHOUT_KTLS();
  const Case& c = kCases[0];
  auto before = tlsStat();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
  RawClient client(port, clientOptions(c, tls::KtlsMode::kOff));
  ASSERT_TRUE(client.handshake());
  ASSERT_TRUE(client.session().write("intact").isOk());
  std::string rec(client.session().output());
  client.session().clearOutput();
  testutil::sendAll(client.fd(), rec);
  EXPECT_EQ(testutil::recvExactly(client.fd(), 1).size(), 1u);  // the echo (encrypted) arrives
  ASSERT_TRUE(client.session().write("flipped").isOk());
  rec = std::string(client.session().output());
  client.session().clearOutput();
  rec[rec.size() - 3] ^= 0x40;  // inside the tag
  testutil::sendAll(client.fd(), rec);
  Status s = log_.waitLoss();
  EXPECT_EQ(s.code(), Status::Code::kTls) << s.toString();
  EXPECT_NE(s.message().find("bad record MAC"), std::string::npos) << s.message();
  EXPECT_GT(tlsStat()["TlsDecryptError"], before["TlsDecryptError"]);
}

TEST_F(KtlsTest, PeerKeyUpdateEndsTheConnectionClearlyWhereTheKernelCannotRekey) {
  SKIP_WITHOUT_KTLS();
  const Case& c = kCases[0];
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
  RawClient client(port, clientOptions(c, tls::KtlsMode::kOff));
  ASSERT_TRUE(client.handshake());
  ASSERT_EQ(SSL_key_update(client.session().ssl(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
  ASSERT_TRUE(client.session().write("after update").isOk());
  client.flush();
  Status s = log_.waitLoss();
  EXPECT_NE(s.message().find("KeyUpdate"), std::string::npos) << s.toString();
}

TEST_F(KtlsTest, BytesPipelinedRightAfterTheHandshakeAreNotLost) {
  SKIP_WITHOUT_KTLS();
  const Case& c = kCases[0];
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
  RawClient client(port, clientOptions(c, tls::KtlsMode::kOff));
  // Finish the handshake but hold the client's Finished back, then send it together with
  // application data in one segment: the server must read exactly up to its end.
  bool done = false;
  ASSERT_TRUE(client.session().advanceHandshake(&done).isOk());
  client.flush();
  char buf[16384];
  while (!done) {
    ssize_t n = recv(client.fd(), buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    client.session().beginInput(std::string_view(buf, static_cast<size_t>(n)));
    ASSERT_TRUE(client.session().advanceHandshake(&done).isOk());
    client.session().endInput();
  }
  ASSERT_TRUE(client.session().write("pipelined with Finished").isOk());
  client.flush();  // Finished + application data in one send
  std::string got;
  for (int i = 0; i < 50 && got.find("pipelined with Finished") == std::string::npos; ++i) {
    ssize_t n = recv(client.fd(), buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    client.session().beginInput(std::string_view(buf, static_cast<size_t>(n)));
    client.session().read([&](std::string_view d) {
      got.append(d);
      return true;
    });
    client.session().endInput();
  }
  EXPECT_EQ(got, "pipelined with Finished");
  std::lock_guard<std::mutex> l(log_.mu);
  ASSERT_FALSE(log_.modes.empty());
  EXPECT_EQ(log_.modes[0], "kernel TX+RX");
}

}  // namespace
}  // namespace whorl
