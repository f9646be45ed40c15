// Tests for how a TlsLayer closes around the kernel-TLS hand-over, over FakeLower (an in-memory
// transport that plays the kernel): a loseConnection() that comes while the keys are being
// installed sends what the application queued (writes, files) and then one close_notify, once.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "framework/tls/session.h"
#include "framework/tls/tls_layer.h"
#include "tests/tls/fake_kernel_lower.h"
#include "tests/tls/tls_pipe.h"

namespace whorl::tls {
namespace {

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// An in-memory file with `text` in it; closed with the object.
class MemFile {
 public:
  explicit MemFile(const std::string& text) : fd_(memfd_create("kernel_close_test", 0)) {
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(::write(fd_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

class KernelCloseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = PrivateCertificate::loadPEM(test::readCertFile("test/localhost-rsa.pem") +
                                          test::readCertFile("test/intermediate.pem"));
    ASSERT_TRUE(id.isOk()) << id.status().message();
    CertificateOptions so = id->options();
    so.ktls = KtlsMode::kRequire;  // auto would skip OpenSSL's secrets on a kernel without kTLS
    auto server = so.context();
    ASSERT_TRUE(server.isOk()) << server.status().message();
    auto ca = Certificate::loadPEMFile(test::certPath("test/ca.pem"));
    ASSERT_TRUE(ca.isOk()) << ca.status().message();
    auto client = optionsForClientTLS("localhost", trustRootFromCertificates({*ca})).context();
    ASSERT_NE(client, nullptr);
    auto peer = TlsSession::create(client);
    ASSERT_TRUE(peer.isOk()) << peer.status().message();
    peer_ = std::move(*peer);
    layer_ = std::make_unique<TlsLayer>(*server, std::make_unique<test::App>(log_));
    lower_.connect(layer_.get());
    lower_.turn();
  }

  // The handshake, with `whileInstalling` run by the application while the kernel takes the keys.
  void handshake(std::function<void()> whileInstalling) {
    lower_.beforeInstall = std::move(whileInstalling);
    test::handshakeOverLower(lower_, *peer_);
    ASSERT_TRUE(peer_->handshakeDone());
    ASSERT_EQ(lower_.tlsMode(), api::TlsMode::kKernelTxRx) << lower_.events;
  }

  api::Transport* app() { return layer_->upper(); }

  test::FakeReactor reactor_;
  test::FakeLower lower_{reactor_, {.kernelAvailable = true}};
  std::shared_ptr<test::AppLog> log_ = std::make_shared<test::AppLog>();
  std::unique_ptr<TlsSession> peer_;
  std::unique_ptr<TlsLayer> layer_;
};

const std::string kCloseNotify = "control record 21 '\\x01\\x00'";

TEST_F(KernelCloseTest, LoseConnectionWhileAFileWaitsForTheKernelSendsOneCloseNotifyAfterIt) {
  MemFile file("the whole file\n");
  Status sent(Status::Code::kUnavailable, "not reported");
  handshake([&] {
    app()->write("before the file\n");
    app()->sendFile(file.fd(), 0, 15, [&](Status s) { sent = s; });
    app()->write("after the file\n");
    app()->loseConnection();
  });
  lower_.turn();
  EXPECT_TRUE(sent.isOk()) << sent.message();
  EXPECT_EQ(lower_.kernelPlaintext(), "before the file\nthe whole file\nafter the file\n");
  EXPECT_EQ(count(lower_.events, kCloseNotify), 1u) << lower_.events;
  EXPECT_EQ(count(lower_.events, kCloseNotify + " after 46 plaintext bytes"), 1u) << lower_.events;
  EXPECT_EQ(count(lower_.events, "loseConnection"), 1u) << lower_.events;
  lower_.lose(Status::connectionDone());
  EXPECT_EQ(log_->lostCalls, 1);
}

// The same close with only writes queued: the path that never sent two.
TEST_F(KernelCloseTest, LoseConnectionWhileWritesWaitForTheKernelSendsOneCloseNotifyAfterThem) {
  handshake([&] {
    app()->write("queued during the hand-over\n");
    app()->loseConnection();
  });
  lower_.turn();
  EXPECT_EQ(lower_.kernelPlaintext(), "queued during the hand-over\n");
  EXPECT_EQ(count(lower_.events, kCloseNotify + " after 28 plaintext bytes"), 1u)
      << lower_.events;
  EXPECT_EQ(count(lower_.events, kCloseNotify), 1u) << lower_.events;
  EXPECT_EQ(count(lower_.events, "loseConnection"), 1u) << lower_.events;
}

TEST_F(KernelCloseTest, AFileSentAfterTheHandOverGoesToTheKernelAndTheCloseFollowsIt) {
  MemFile file("spliced\n");
  handshake(nullptr);
  Status sent(Status::Code::kUnavailable, "not reported");
  app()->sendFile(file.fd(), 0, 8, [&](Status s) { sent = s; });
  app()->loseConnection();
  lower_.turn();
  EXPECT_TRUE(sent.isOk()) << sent.message();
  EXPECT_EQ(lower_.kernelPlaintext(), "spliced\n");
  EXPECT_EQ(count(lower_.events, kCloseNotify + " after 8 plaintext bytes"), 1u)
      << lower_.events;
  EXPECT_EQ(count(lower_.events, kCloseNotify), 1u) << lower_.events;
}

}  // namespace
}  // namespace whorl::tls
