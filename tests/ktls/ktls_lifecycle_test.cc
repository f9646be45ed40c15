// Kernel TLS over a connection's life: the server's TLS 1.3 session tickets written before the
// hand-over (they count in the kernel's starting sequence number), startTLS ending in the
// kernel, and our close_notify as a raw OpenSSL peer sees it.
#include "framework/api/line_receiver.h"
#include "tests/ktls/ktls_support.h"

namespace whorl {
namespace {

using namespace ktlstest;

// --- close_notify from a kernel-mode whorl server, seen by SSL_read itself ---

class KtlsCloseNotify : public KtlsBase, public ::testing::WithParamInterface<Case> {};

TEST_P(KtlsCloseNotify, RawClientReadsZeroReturnAfterTheServerLosesTheConnection) {
  SKIP_WITHOUT_KTLS();
  const Case& c = GetParam();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire), /*closeOn=*/"bye");
  RawClient client(port, clientOptions(c, tls::KtlsMode::kOff));
  ASSERT_TRUE(client.handshake());
  ASSERT_TRUE(client.send("first, then bye"));
  EXPECT_EQ(client.receive(15), "first, then bye");
  EXPECT_EQ(log_.firstMode(), "kernel TX+RX");
  // Now SSL_read must end with the alert, not with a bare TCP EOF.
  SSL* ssl = client.session().ssl();
  char buf[4096];
  int rc = -1, err = SSL_ERROR_NONE;
  std::string extra;
  for (int i = 0; i < 100; ++i) {
    rc = SSL_read(ssl, buf, sizeof(buf));
    err = SSL_get_error(ssl, rc);
    if (rc > 0) {
      extra.append(buf, static_cast<size_t>(rc));
      continue;
    }
    if (err != SSL_ERROR_WANT_READ) break;
    pollfd p{client.fd(), POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 20000), 0) << "nothing arrived after the echo";
    ssize_t n = recv(client.fd(), buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << "TCP EOF (or error) before any close_notify";
    client.session().beginInput(std::string_view(buf, static_cast<size_t>(n)));
    rc = SSL_read(ssl, buf, sizeof(buf));
    err = SSL_get_error(ssl, rc);
    client.session().endInput();
    if (rc > 0) {
      extra.append(buf, static_cast<size_t>(rc));
      continue;
    }
    if (err != SSL_ERROR_WANT_READ) break;
  }
  EXPECT_EQ(extra, "");
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(err, SSL_ERROR_ZERO_RETURN) << "SSL_read: rc " << rc << ", error " << err;
  EXPECT_NE(SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN, 0);
  // And then the TCP FIN.
  int eofErr = -2;
  testutil::recvUntilEof(client.fd(), &eofErr);
  EXPECT_EQ(eofErr, 0);
  EXPECT_TRUE(log_.waitLoss().isCleanClose());
}

const Case kCloseCases[] = {kCases[0], kCases[2], kCases[3], kCases[5]};
INSTANTIATE_TEST_SUITE_P(Versions, KtlsCloseNotify, ::testing::ValuesIn(kCloseCases), caseName);

// --- NewSessionTickets written before the kernel takes over ---

class KtlsTickets : public KtlsBase, public ::testing::WithParamInterface<int> {};

// A TLS 1.3 server writes its tickets right after its Finished, under the application key, so
// the kernel's TX sequence must start after them. A wrong start shows as a decryption failure
// (bad record MAC) at the userspace client. A second connection resumes with one of the tickets.
TEST_P(KtlsTickets, ServerTicketsBeforeTheHandOverKeepTheSequence) {
  SKIP_WITHOUT_KTLS();
  const int tickets = GetParam();
  const Case& c = kCases[0];
  auto before = tlsStat();
  auto ctx = serverOptions(c, tls::KtlsMode::kRequire).context();
  ASSERT_TRUE(ctx.isOk()) << ctx.status().message();
  if (tickets >= 0) {
    ASSERT_EQ(SSL_CTX_set_num_tickets((*ctx)->raw(), static_cast<size_t>(tickets)), 1);
  }
  const size_t expectedTickets = tickets >= 0 ? static_cast<size_t>(tickets) : 2;
  EXPECT_EQ(SSL_CTX_get_num_tickets((*ctx)->raw()), expectedTickets);
  uint16_t port = listenWith(*ctx);
  auto userspace = clientOptions(c, tls::KtlsMode::kOff);  // one context: it keeps the session

  std::string payload = testutil::randomBytes(1 << 20, 41);
  ClientResult r = echo(port, userspace, payload);
  EXPECT_TRUE(r.echoed == payload) << r.lost.toString();
  EXPECT_TRUE(r.lost.isCleanClose()) << r.lost.toString();
  EXPECT_EQ(r.mode, "userspace");
  EXPECT_FALSE(r.resumed);

  // Again: resumed with a ticket if there was one, and still in the kernel.
  ClientResult again = echo(port, userspace, payload);
  EXPECT_TRUE(again.echoed == payload) << again.lost.toString();
  EXPECT_EQ(again.resumed, expectedTickets > 0);

  // A kernel-mode client receives the tickets after its own hand-over, as control records.
  ClientResult kernel = echo(port, clientOptions(c, tls::KtlsMode::kRequire), payload);
  EXPECT_TRUE(kernel.echoed == payload) << kernel.lost.toString();
  EXPECT_EQ(kernel.mode, "kernel TX+RX");
  EXPECT_TRUE(kernel.lost.isCleanClose()) << kernel.lost.toString();

  auto modes = log_.waitModes(3);
  ASSERT_EQ(modes.size(), 3u);
  for (auto& m : modes) EXPECT_EQ(m, "kernel TX+RX");
  auto after = tlsStat();
  EXPECT_EQ(after["TlsTxSw"] - before["TlsTxSw"], 4) << "3 server sockets + 1 kernel client";
  EXPECT_EQ(after["TlsRxSw"] - before["TlsRxSw"], 4);
  EXPECT_EQ(after["TlsDecryptError"], before["TlsDecryptError"]);
}

// -1: OpenSSL's default (2).
INSTANTIATE_TEST_SUITE_P(Counts, KtlsTickets, ::testing::Values(-1, 0, 1, 5, 16),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return i.param < 0 ? std::string("default") : std::to_string(i.param);
                         });

// --- startTLS: a line protocol upgrades in the middle and ends in the kernel ---

struct StartTlsLog {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> clientLines;
  std::string serverMode, clientMode;
  std::vector<std::string> serverPlainLines;
  bool serverLost = false, clientLost = false;
  Status serverReason, clientReason;
  template <typename F>
  void update(F f) {
    std::lock_guard<std::mutex> l(mu);
    f();
    cv.notify_all();
  }
  bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds t = 30s) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, t, pred);
  }
};

constexpr int kSecureLines = 2000;

// The seed's starttls_server: plain lines until STARTTLS, READY, then TLS on the same
// connection; here it also echoes every secure line.
class StartTlsServer : public api::LineReceiver {
 public:
  StartTlsServer(std::shared_ptr<tls::TlsContext> ctx, StartTlsLog* log)
      : ctx_(std::move(ctx)), log_(log) {}
  void lineReceived(std::string_view line) override {
    if (!secure_) {
      log_->update([&] { log_->serverPlainLines.emplace_back(line); });
      if (line == "STARTTLS") {
        sendLine("READY");
        secure_ = true;
        if (Status s = transport()->startTLS(ctx_); !s.isOk()) {
          log_->update([&] { log_->serverReason = s; });
          transport()->loseConnection();
        }
      }
      return;
    }
    if (log_->serverMode.empty()) {
      std::string m = api::toString(transport()->tlsMode());
      log_->update([&] { log_->serverMode = m; });
    }
    sendLine("echo " + std::string(line));
  }
  void connectionLost(const Status& r) override {
    log_->update([&] {
      log_->serverLost = true;
      if (log_->serverReason.isOk()) log_->serverReason = r;
    });
  }

 private:
  std::shared_ptr<tls::TlsContext> ctx_;
  StartTlsLog* log_;
  bool secure_ = false;
};

// The seed's starttls_client: "plain text", STARTTLS, READY, upgrade, then secure lines; closes
// once every echo is back.
class StartTlsClient : public api::LineReceiver {
 public:
  StartTlsClient(std::shared_ptr<tls::TlsContext> ctx, StartTlsLog* log)
      : ctx_(std::move(ctx)), log_(log) {}
  void connectionMade() override {
    sendLine("plain text");
    sendLine("STARTTLS");
  }
  void pauseProducing() override {}
  void resumeProducing() override {}
  void lineReceived(std::string_view line) override {
    if (!secure_) {
      if (line != "READY") return;
      secure_ = true;
      if (Status s = transport()->startTLS(ctx_); !s.isOk()) {
        log_->update([&] { log_->clientReason = s; });
        transport()->abortConnection();
        return;
      }
      // Written before the handshake completes: queued, then sent through the kernel.
      for (int i = 0; i < kSecureLines; ++i) sendLine("secure line " + std::to_string(i));
      return;
    }
    std::string m = log_->clientMode.empty() ? api::toString(transport()->tlsMode()) : "";
    log_->update([&] {
      if (!m.empty()) log_->clientMode = m;
      log_->clientLines.emplace_back(line);
    });
    if (++echoes_ == kSecureLines) transport()->loseConnection();
  }
  void connectionLost(const Status& r) override {
    log_->update([&] {
      log_->clientLost = true;
      if (log_->clientReason.isOk()) log_->clientReason = r;
    });
  }

 private:
  std::shared_ptr<tls::TlsContext> ctx_;
  StartTlsLog* log_;
  bool secure_ = false;
  int echoes_ = 0;
};

class KtlsStartTLS : public KtlsBase, public ::testing::WithParamInterface<Case> {};

TEST_P(KtlsStartTLS, UpgradedConnectionEndsInKernelTls) {
  SKIP_WITHOUT_KTLS();
  const Case& c = GetParam();
  auto before = tlsStat();
  auto serverCtx = serverOptions(c, tls::KtlsMode::kRequire).context();
  ASSERT_TRUE(serverCtx.isOk()) << serverCtx.status().message();
  auto clientCtx = clientOptions(c, tls::KtlsMode::kRequire).context();
  StartTlsLog log;
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  auto listening = endpoint::TCP4ServerEndpoint(*rt_, 0, tcp)
                       .listen(api::Factory::forProtocol<StartTlsServer>(*serverCtx, &log));
  ASSERT_TRUE(listening.isOk()) << listening.status().message();
  uint16_t port = (*listening)->getHost().port();
  ports_.push_back(std::move(listening.value()));
  auto connected = std::make_shared<std::promise<Status>>();
  endpoint::TCP4ClientEndpoint(rt_->shard(0), "127.0.0.1", port)
      .connect(api::Factory::forProtocol<StartTlsClient>(clientCtx, &log),
               [connected](Result<api::Protocol*> r) { connected->set_value(r.status()); });
  ASSERT_TRUE(connected->get_future().get().isOk());
  EXPECT_TRUE(log.waitFor([&] { return log.clientLost && log.serverLost; }))
      << "the exchange did not finish";
  std::lock_guard<std::mutex> l(log.mu);
  EXPECT_EQ(log.serverPlainLines, (std::vector<std::string>{"plain text", "STARTTLS"}));
  EXPECT_TRUE(log.clientReason.isCleanClose()) << log.clientReason.toString();
  EXPECT_TRUE(log.serverReason.isCleanClose())
      << "the client's close_notify: " << log.serverReason.toString();
  ASSERT_EQ(log.clientLines.size(), static_cast<size_t>(kSecureLines));
  for (int i = 0; i < kSecureLines; ++i) {
    ASSERT_EQ(log.clientLines[static_cast<size_t>(i)], "echo secure line " + std::to_string(i));
  }
  EXPECT_EQ(log.clientMode, "kernel TX+RX");
  EXPECT_EQ(log.serverMode, "kernel TX+RX");
  auto after = tlsStat();
  EXPECT_EQ(after["TlsTxSw"] - before["TlsTxSw"], 2);
  EXPECT_EQ(after["TlsRxSw"] - before["TlsRxSw"], 2);
  EXPECT_EQ(after["TlsDecryptError"], before["TlsDecryptError"]);
}

const Case kStartTlsCases[] = {kCases[0], kCases[4]};
INSTANTIATE_TEST_SUITE_P(Versions, KtlsStartTLS, ::testing::ValuesIn(kStartTlsCases), caseName);

}  // namespace
}  // namespace whorl
