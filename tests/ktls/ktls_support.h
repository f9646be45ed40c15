// Shared pieces of the kernel TLS suite (tests/ktls/*_test.cc, one static binary that
// tools/ktls-vm boots in VMs): certificates, /proc/net/tls_stat, the echo protocols, a fixture
// with a runtime, a raw TlsSession client over a blocking socket, and the openssl binary.
#pragma once

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "framework/endpoint/endpoint.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/base/ktls_probe.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "framework/tls/session.h"
#include "framework/tls/tls_layer.h"
#include "tests/socket_util.h"

namespace whorl::ktlstest {

using namespace std::chrono_literals;

inline std::string certDir() {
  if (const char* d = std::getenv("WHORL_CERTS")) return d;
  if (const char* s = std::getenv("TEST_SRCDIR")) return std::string(s) + "/whorl/certs";
  return "certs";
}
inline std::string cert(const std::string& name) { return certDir() + "/" + name; }

inline std::map<std::string, long> tlsStat() {
  std::map<std::string, long> m;
  std::ifstream in("/proc/net/tls_stat");
  std::string k;
  long v;
  while (in >> k >> v) m[k] = v;
  return m;
}

// Kernel release as (major, minor), from uname.
inline std::pair<int, int> kernelVersion() {
  utsname u{};
  uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  return {major, minor};
}
// TLS 1.3 KeyUpdate in kTLS (a second TLS_TX / TLS_RX) arrived in Linux 6.14.
inline bool kernelCanRekey() { return kernelVersion() >= std::pair<int, int>(6, 14); }

// The openssl command line tool (in the VM: tools/ktls-vm --with-openssl), or "" if absent.
inline std::string opensslPath() {
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      std::string p = (dir.empty() ? "." : dir) + "/openssl";
      if (access(p.c_str(), X_OK) == 0) return p;
    }
  }
  if (access("/usr/bin/openssl", X_OK) == 0) return "/usr/bin/openssl";
  return {};
}

#define SKIP_WITHOUT_KTLS()                                                                 \
  do {                                                                                      \
    if (!whorl::kernelTlsSupport().isOk()) GTEST_SKIP() << whorl::kernelTlsSupport().message(); \
  } while (0)

#define SKIP_WITHOUT_OPENSSL()                                                            \
  do {                                                                                    \
    if (::whorl::ktlstest::opensslPath().empty())                                         \
      GTEST_SKIP() << "no openssl binary (run the VM with tools/ktls-vm --with-openssl)"; \
  } while (0)

struct Case {
  const char* name;
  tls::TLSVersion version;
  const char* tls12;
  const char* tls13;
};

inline const Case kCases[] = {
    {"tls13_aes128", tls::TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_AES_128_GCM_SHA256"},
    {"tls13_aes256", tls::TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_AES_256_GCM_SHA384"},
    {"tls13_chacha", tls::TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_CHACHA20_POLY1305_SHA256"},
    {"tls12_aes128", tls::TLSVersion::TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", ""},
    {"tls12_aes256", tls::TLSVersion::TLSv1_2, "ECDHE-ECDSA-AES256-GCM-SHA384", ""},
    {"tls12_chacha", tls::TLSVersion::TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305", ""},
};
inline std::string caseName(const ::testing::TestParamInfo<Case>& i) { return i.param.name; }
inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }  // gtest's failure lines

// Server protocol log: each connection's mode and how it ended.
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
  // Waits until `n` connections reported their mode; returns them.
  std::vector<std::string> waitModes(size_t n, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, timeout, [&] { return modes.size() >= n; });
    return modes;
  }
  std::string firstMode() {
    std::lock_guard<std::mutex> l(mu);
    return modes.empty() ? "" : modes[0];
  }
};

// Echoes; reports its mode with the first data. If the data contains `closeOn`, it writes the
// echo and then loseConnection() (a close_notify from our side).
class ServerEcho : public api::Protocol {
 public:
  explicit ServerEcho(ServerLog* log, std::string closeOn = {})
      : log_(log), closeOn_(std::move(closeOn)) {}
  void dataReceived(std::string_view d) override {
    if (!reported_) {
      reported_ = true;
      log_->mode(api::toString(transport()->tlsMode()));
    }
    transport()->write(d);
    if (!closeOn_.empty() && d.find(closeOn_) != std::string_view::npos)
      transport()->loseConnection();
  }
  void connectionLost(const Status& r) override { log_->lost(r); }

 private:
  ServerLog* log_;
  std::string closeOn_;
  bool reported_ = false;
};

// Client protocol: sends `payload`, expects it back, records its mode, closes.
struct ClientResult {
  std::string echoed;
  std::string mode;
  Status lost;
  bool resumed = false;  // the TLS session was resumed (a ticket from an earlier connection)
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
    if (r_.mode.empty()) {
      r_.mode = api::toString(transport()->tlsMode());
      r_.resumed = transport()->sessionResumed();
    }
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

// A runtime with two shards, server and client options for a Case, listen and echo.
class KtlsBase : public ::testing::Test {
 public:
  static tls::CertificateOptions serverOptions(const Case& c, tls::KtlsMode mode) {
    auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
    EXPECT_TRUE(pc.isOk()) << pc.status().message();
    auto o = pc->options();
    o.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
    o.acceptableCiphers = *tls::AcceptableCiphers::fromOpenSSLCipherString(c.tls12, c.tls13);
    o.lowerMaximumSecurityTo = c.version;
    o.ktls = mode;
    return o;
  }
  static tls::TLSOptions clientOptions(const Case& c, tls::KtlsMode mode) {
    tls::ClientTLSExtras e;
    e.lowerMaximumSecurityTo = c.version;
    e.ktls = mode;
    auto o = tls::optionsForClientTLS(
        "localhost",
        tls::trustRootFromCertificates({*tls::Certificate::loadPEMFile(cert("test/ca.pem"))}), {},
        {}, e);
    EXPECT_TRUE(o.isOk()) << o.status().message();
    return o;
  }

 protected:
  void SetUp() override {
    // Skip before building a runtime: natively every test skips, and dozens of runtimes created
    // and torn down back to back can outrun the kernel's release of io_uring memory (ENOMEM).
    SKIP_WITHOUT_KTLS();
    reactor::RuntimeOptions o;
    o.shards = 2;
    o.pinThreads = false;
    rt_ = std::make_unique<reactor::Runtime>(o);
    Status s = rt_->start();
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  void TearDown() override {
    if (!rt_) return;
    rt_->stop(0ms);
    rt_->join();
  }
  uint16_t listen(tls::CertificateOptions o, std::string closeOn = {}) {
    endpoint::TcpServerOptions tcp;
    tcp.interface = "127.0.0.1";
    auto p = endpoint::SSL4ServerEndpoint(*rt_, 0, std::move(o), tcp)
                 .listen(api::Factory::forProtocol<ServerEcho>(&log_, closeOn));
    EXPECT_TRUE(p.isOk()) << p.status().message();
    ports_.push_back(std::move(p.value()));
    return ports_.back()->getHost().port();
  }
  // Listens with a ready-made server context (e.g. one tuned through context->raw()).
  uint16_t listenWith(std::shared_ptr<tls::TlsContext> context) {
    endpoint::TcpServerOptions tcp;
    tcp.interface = "127.0.0.1";
    auto p = endpoint::TCP4ServerEndpoint(*rt_, 0, tcp)
                 .listen(std::make_shared<tls::TlsFactory>(
                     std::move(context), api::Factory::forProtocol<ServerEcho>(&log_)));
    EXPECT_TRUE(p.isOk()) << p.status().message();
    ports_.push_back(std::move(p.value()));
    return ports_.back()->getHost().port();
  }
  ClientResult echo(uint16_t port, tls::TLSOptions o, const std::string& payload) {
    auto done = std::make_shared<std::promise<ClientResult>>();
    auto connected = std::make_shared<std::promise<Status>>();
    endpoint::SSL4ClientEndpoint(rt_->shard(0), "127.0.0.1", port, o)
        .connect(api::Factory::forProtocol<ClientEcho>(&payload, done),
                 [connected](Result<api::Protocol*> r) { connected->set_value(r.status()); });
    auto cs = connected->get_future();
    if (cs.wait_for(20s) != std::future_status::ready)
      return {"", "", Status(Status::Code::kTimeout, "connect")};
    Status s = cs.get();
    if (!s.isOk()) return {"", "", s};
    auto f = done->get_future();
    if (f.wait_for(60s) != std::future_status::ready)
      return {"", "", Status(Status::Code::kTimeout, "echo")};
    return f.get();
  }

  std::unique_ptr<reactor::Runtime> rt_;
  std::vector<std::unique_ptr<endpoint::ListeningPort>> ports_;
  ServerLog log_;
};

// A raw TLS client (TlsSession over a blocking socket) for what a framework peer would never
// send (corrupted records, KeyUpdate) and to see exactly what arrives (close_notify).
class RawClient {
 public:
  RawClient(uint16_t port, tls::TLSOptions o) {
    fd_ = testutil::connectTo(port);
    session_ = std::move(tls::TlsSession::create(o.context()).value());
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
      wire_.append(buf, static_cast<size_t>(n));
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
  bool send(std::string_view plain) {
    if (!session_->write(plain).isOk()) return false;
    flush();
    return true;
  }
  // Reads and decrypts until `n` plaintext bytes arrived (or the peer closes / fails / 20 s).
  std::string receive(size_t n) {
    std::string got;
    char buf[16384];
    while (got.size() < n) {
      auto r = session_->read([&](std::string_view d) {
        got.append(d);
        return true;
      });
      flush();  // OpenSSL may answer (e.g. a KeyUpdate)
      if (r == tls::TlsSession::ReadResult::kFailed ||
          r == tls::TlsSession::ReadResult::kPeerClosed)
        break;
      if (got.size() >= n) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20000) <= 0) break;
      ssize_t k = recv(fd_, buf, sizeof(buf), 0);
      if (k <= 0) break;
      wire_.append(buf, static_cast<size_t>(k));
      session_->beginInput(std::string_view(buf, static_cast<size_t>(k)));
      r = session_->read([&](std::string_view d) {
        got.append(d);
        return true;
      });
      session_->endInput();
      flush();
      if (r == tls::TlsSession::ReadResult::kFailed ||
          r == tls::TlsSession::ReadResult::kPeerClosed)
        break;
    }
    return got;
  }
  // Reads what is left until the server's FIN, undecrypted, into wire().
  void drainToEof() {
    char buf[16384];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20000) <= 0) return;
      ssize_t k = recv(fd_, buf, sizeof(buf), 0);
      if (k <= 0) return;
      wire_.append(buf, static_cast<size_t>(k));
    }
  }
  // Every byte received from the server, as it came off the socket (handshake() and receive()
  // and drainToEof()).
  const std::string& wire() const { return wire_; }
  // The lengths of the whole TLS records in wire(), in order.
  std::vector<size_t> recordLengths() const {
    std::vector<size_t> out;
    for (size_t pos = 0; pos + 5 <= wire_.size();) {
      size_t len = static_cast<unsigned char>(wire_[pos + 3]) << 8 |
                   static_cast<unsigned char>(wire_[pos + 4]);
      if (pos + 5 + len > wire_.size()) break;
      out.push_back(len);
      pos += 5 + len;
    }
    return out;
  }
  int fd() const { return fd_; }
  tls::TlsSession& session() { return *session_; }

 private:
  std::string wire_;
  int fd_ = -1;
  std::unique_ptr<tls::TlsSession> session_;
};

}  // namespace whorl::ktlstest
