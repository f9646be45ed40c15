// The kernel TLS suite. It runs inside VMs booting stock Debian kernels that have CONFIG_TLS
// (tools/ktls-vm test), because the development kernel lacks it; on a kernel without kTLS every
// test skips itself. Each test asserts the offload itself, not only the data: the transports'
// reported mode and the kernel's own counters in /proc/net/tls_stat. A test that passes after a
// silent fallback to userspace would be a failing test.
#include "tests/ktls/ktls_support.h"

namespace whorl {
namespace {

using namespace ktlstest;

class KtlsTest : public KtlsBase, public ::testing::WithParamInterface<Case> {};

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

INSTANTIATE_TEST_SUITE_P(Ciphers, KtlsTest, ::testing::ValuesIn(kCases), caseName);

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

// KeyUpdate (followed from Linux 6.14, a clear close before): tests/ktls/ktls_keyupdate_test.cc.

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


// sendFile over kernel TLS: the file is spliced to the socket and the kernel encrypts it; a
// userspace client (RawClient, OpenSSL) decrypts head + file + tail in order.
class KtlsFileSender : public api::Protocol {
 public:
  KtlsFileSender(int fd, uint64_t size, ServerLog* log) : fd_(fd), size_(size), log_(log) {}
  void handshakeCompleted() override { send(); }
  void connectionLost(const Status& r) override { log_->lost(r); }

 private:
  void send() {
    transport()->write("head:");
    // The mode when the file is out: the kernel takes over a moment after the handshake.
    transport()->sendFile(fd_, 0, size_,
                          [this](Status) { log_->mode(api::toString(transport()->tlsMode())); });
    transport()->write(":tail");
    transport()->loseConnection();
  }
  int fd_;
  uint64_t size_;
  ServerLog* log_;
};

TEST_F(KtlsTest, SendFileIsSplicedThroughKernelTls) {
  const Case& c = kCases[0];
  std::string content = testutil::randomBytes(2 << 20, 123);
  const char* path = "/tmp/ktls-sendfile.bin";
  FILE* f = std::fopen(path, "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(content.data(), 1, content.size(), f);
  std::fclose(f);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto before = tlsStat();
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  auto p = endpoint::SSL4ServerEndpoint(*rt_, 0, serverOptions(c, tls::KtlsMode::kRequire), tcp)
               .listen(api::Factory::forProtocol<KtlsFileSender>(fd, uint64_t{content.size()}, &log_));
  ASSERT_TRUE(p.isOk()) << p.status().message();
  RawClient client((*p)->getHost().port(), clientOptions(c, tls::KtlsMode::kOff));
  ASSERT_TRUE(client.handshake());
  std::string got = client.receive(content.size() + 10);
  ASSERT_EQ(got.size(), content.size() + 10);
  EXPECT_EQ(got.substr(0, 5), "head:");
  EXPECT_TRUE(got.substr(5, content.size()) == content);
  EXPECT_EQ(got.substr(5 + content.size()), ":tail");
  EXPECT_EQ(log_.firstMode(), "kernel TX+RX");
  EXPECT_GE(tlsStat()["TlsTxSw"] - before["TlsTxSw"], 1);
  // The close came while the file waited for the hand-over: one close_notify ends the stream (a
  // TLS 1.3 alert record is 19 bytes: the alert, its inner content type and the 16-byte tag).
  client.drainToEof();
  std::vector<size_t> records = client.recordLengths();
  ASSERT_GE(records.size(), 3u);
  EXPECT_EQ(records.back(), 19u) << "the stream does not end with a close_notify";
  EXPECT_NE(records[records.size() - 2], 19u) << "two close_notify records end the stream";
  close(fd);
}


// A kTLS client keeps the server's session tickets even though they arrive after the kernel took
// over the receiving side (handed back to OpenSSL), and resumes with them.
class ResumeProbe : public api::Protocol {
 public:
  explicit ResumeProbe(std::shared_ptr<std::promise<std::string>> done) : done_(std::move(done)) {}
  void handshakeCompleted() override { transport()->write("ping"); }
  void dataReceived(std::string_view) override {
    if (reported_) return;
    reported_ = true;
    done_->set_value(std::string(transport()->sessionResumed() ? "resumed " : "full ") +
                     api::toString(transport()->tlsMode()));
    transport()->loseConnection();
  }
  void connectionLost(const Status& r) override {
    if (!reported_) done_->set_value("lost: " + r.message());
  }

 private:
  std::shared_ptr<std::promise<std::string>> done_;
  bool reported_ = false;
};

TEST_F(KtlsTest, KernelClientResumesWithTicketsThatArrivedAfterTheHandOver) {
  for (const Case& c : {kCases[0], kCases[2]}) {  // TLS 1.3: AES-128-GCM and ChaCha20
    SCOPED_TRACE(c.name);
    uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
    auto options = clientOptions(c, tls::KtlsMode::kRequire);
    std::vector<std::string> results;
    for (int i = 0; i < 3; ++i) {
      auto done = std::make_shared<std::promise<std::string>>();
      endpoint::SSL4ClientEndpoint(rt_->shard(0), "127.0.0.1", port, options)
          .connect(api::Factory::forProtocol<ResumeProbe>(done), [](Result<api::Protocol*>) {});
      auto f = done->get_future();
      ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
      results.push_back(f.get());
    }
    EXPECT_EQ(results[0], "full kernel TX+RX");
    EXPECT_EQ(results[1], "resumed kernel TX+RX");
    EXPECT_EQ(results[2], "resumed kernel TX+RX");
  }
}

}  // namespace
}  // namespace whorl
