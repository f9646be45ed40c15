// Transport::startTLS over loopback with a real runtime: the seed's STARTTLS/READY exchange
// between a whorl server and a whorl client, and raw POSIX peers (driving a TlsSession by hand)
// that watch the wire and misbehave on purpose: ordering of plaintext and TLS bytes, input one
// byte at a time, plaintext pipelined behind STARTTLS (CVE-2011-0411) and behind READY
// (CVE-2021-23222 class), a ClientHello pipelined with STARTTLS, startTLS twice / on TLS / with
// the wrong role / with options that failed to build, a certificate's options() and
// optionsForClientTLS passed straight to startTLS, reversed roles, a failed handshake, and
// 16 MiB each way after the upgrade.
#include <gtest/gtest.h>
#include <netinet/tcp.h>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "framework/api/line_receiver.h"
#include "framework/endpoint/endpoint.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "framework/tls/session.h"
#include "tests/socket_util.h"

namespace whorl {
namespace {

using namespace std::chrono_literals;
using Events = std::vector<std::string>;

std::string cert(const std::string& name) {
  return std::string(std::getenv("TEST_SRCDIR")) + "/whorl/certs/" + name;
}

// localhost.pem (with the intermediate): what the test PKI's clients trust.
std::shared_ptr<tls::TlsContext> serverContext() {
  auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
  EXPECT_TRUE(pc.isOk()) << pc.status().message();
  auto o = pc->options();
  o.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
  auto ctx = o.context();
  EXPECT_TRUE(ctx.isOk()) << ctx.status().message();
  return *ctx;
}

// Verifies "localhost" against `ca`.
std::shared_ptr<tls::TlsContext> clientContext(const std::string& ca = "test/ca.pem") {
  auto o = tls::optionsForClientTLS(
      "localhost", tls::trustRootFromCertificates({*tls::Certificate::loadPEMFile(cert(ca))}));
  EXPECT_TRUE(o.isOk()) << o.status().message();
  return o.context();
}

uint64_t fnv1a(uint64_t h, std::string_view data) {
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}
constexpr uint64_t kFnvOffset = 14695981039346656037ull;

// Everything both sides' protocols saw, in order, as "side event".
class Journal {
 public:
  void add(std::string event) {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back(std::move(event));
    cv_.notify_all();
  }
  // Waits until some event starts with `prefix`.
  bool waitFor(const std::string& prefix, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] {
      for (const auto& e : events_) {
        if (e.rfind(prefix, 0) == 0) return true;
      }
      return false;
    });
  }
  // The events of one side, without the side's name.
  Events of(const std::string& side) {
    std::lock_guard<std::mutex> l(mu_);
    Events out;
    for (const auto& e : events_) {
      if (e.rfind(side + " ", 0) == 0) out.push_back(e.substr(side.size() + 1));
    }
    return out;
  }
  std::string dump() {
    std::lock_guard<std::mutex> l(mu_);
    std::string s;
    for (const auto& e : events_) s += "  " + e + "\n";
    return s;
  }
  bool contains(const std::string& needle) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& e : events_) {
      if (e.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Events events_;
};

class Peer;

// What one side does. Callbacks run on the connection's shard.
struct Script {
  std::string side;
  Journal* journal = nullptr;
  std::function<void(Peer&)> made;
  std::function<void(Peer&, std::string_view)> line;
  std::function<void(Peer&)> handshake;
  // After "BULK n" and n raw bytes were received: n and their FNV-1a hash.
  std::function<void(Peer&, size_t, uint64_t)> bulk;
};

// A LineReceiver that journals everything and follows its Script.
class Peer : public api::LineReceiver {
 public:
  explicit Peer(std::shared_ptr<Script> script) : s_(std::move(script)) {}

  void note(const std::string& event) { s_->journal->add(s_->side + " " + event); }
  Status startTLS(std::shared_ptr<const api::TlsUpgrade> tls, api::StartTLSOptions options = {}) {
    Status st = transport()->startTLS(std::move(tls), options);
    note(st.isOk() ? "starttls ok" : "starttls error: " + st.message());
    return st;
  }

  void connectionMade() override {
    note("made");
    if (s_->made) s_->made(*this);
  }
  void lineReceived(std::string_view line) override {
    note("line " + std::string(line) + (transport()->isTLS() ? " [tls]" : " [plain]"));
    if (line.rfind("BULK ", 0) == 0) {
      bulkWant_ = std::stoull(std::string(line.substr(5)));
      bulkGot_ = 0;
      hash_ = kFnvOffset;
      setRawMode();
      return;
    }
    if (s_->line) s_->line(*this, line);
  }
  void rawDataReceived(std::string_view data) override {
    size_t n = std::min(data.size(), bulkWant_ - bulkGot_);
    hash_ = fnv1a(hash_, data.substr(0, n));
    bulkGot_ += n;
    if (bulkGot_ < bulkWant_) return;
    note("bulk " + std::to_string(bulkGot_) + " " + std::to_string(hash_));
    setLineMode(data.substr(n));
    if (s_->bulk) s_->bulk(*this, bulkGot_, hash_);
  }
  void handshakeCompleted() override {
    std::string peer;
    if (auto x = transport()->getPeerCertificate()) peer = " peer=" + tls::Certificate(x).commonName();
    note("handshake " + transport()->tlsVersion() + peer);
    if (s_->handshake) s_->handshake(*this);
  }
  void connectionLost(const Status& reason) override {
    note("lost " + (reason.isCleanClose() ? std::string("clean") : reason.message()));
  }

 private:
  std::shared_ptr<Script> s_;
  size_t bulkWant_ = 0;
  size_t bulkGot_ = 0;
  uint64_t hash_ = kFnvOffset;
};

// A TLS peer nobody in whorl's transports wrote: a TlsSession driven over a blocking socket.
class BlockingTls {
 public:
  // dribble: send every ciphertext byte in its own send(), with a pause in between.
  BlockingTls(int fd, std::shared_ptr<tls::TlsContext> context, bool dribble = false)
      : fd_(fd), dribble_(dribble) {
    auto s = tls::TlsSession::create(std::move(context));
    EXPECT_TRUE(s.isOk()) << s.status().message();
    session_ = std::move(s.value());
  }

  // Client: produces the ClientHello and returns it instead of sending it.
  std::string clientHello() {
    bool done = false;
    EXPECT_TRUE(session_->advanceHandshake(&done).isOk());
    std::string out(session_->output());
    session_->clearOutput();
    return out;
  }

  // Runs the handshake to the end; `already` is ciphertext the caller read off the socket.
  Status handshake(std::string already = {}) {
    std::string in = std::move(already);
    for (;;) {
      bool done = false;
      session_->beginInput(in);
      Status st = session_->advanceHandshake(&done);
      session_->endInput();
      flush();
      if (!st.isOk() || session_->handshakeDone()) return st;
      in = recvSome();
      if (in.empty()) return Status(Status::Code::kConnectionLost, "EOF during the handshake");
    }
  }

  bool write(std::string_view plain) { return session_->write(plain).isOk() && flush(); }

  // Plaintext received so far once it contains `needle` (or at EOF, failure, timeout).
  std::string readUntil(const std::string& needle) {
    std::string in;  // the first round decrypts what came with the handshake
    for (;;) {
      session_->beginInput(in);
      auto r = session_->read([&](std::string_view p) {
        plain_.append(p);
        return true;
      });
      session_->endInput();
      flush();
      if (plain_.find(needle) != std::string::npos) return plain_;
      if (r == tls::TlsSession::ReadResult::kPeerClosed ||
          r == tls::TlsSession::ReadResult::kFailed) {
        return plain_;
      }
      in = recvSome();
      if (in.empty()) return plain_;
    }
  }

  // Sends close_notify and waits for the peer to close (it answers with its own).
  void closeAndWait() {
    session_->shutdown();
    flush();
    int err = 0;
    testutil::recvUntilEof(fd_, &err, 10000);
  }

 private:
  bool flush() {
    std::string out(session_->output());
    session_->clearOutput();
    if (!dribble_) return testutil::sendAll(fd_, out);
    for (char c : out) {
      if (!testutil::sendAll(fd_, std::string_view(&c, 1))) return false;
      std::this_thread::sleep_for(50us);
    }
    return true;
  }
  std::string recvSome() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return {};
    char buf[65536];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }

  int fd_;
  bool dribble_;
  std::unique_ptr<tls::TlsSession> session_;
  std::string plain_;
};

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Sends every byte in its own send(), with a pause, so the server reads them one by one.
void sendByteByByte(int fd, std::string_view data) {
  for (char c : data) {
    ASSERT_TRUE(testutil::sendAll(fd, std::string_view(&c, 1)));
    std::this_thread::sleep_for(200us);
  }
}

class StartTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor::RuntimeOptions ro;
    ro.shards = 2;
    ro.pinThreads = false;
    runtime_ = std::make_unique<reactor::Runtime>(ro);
    ASSERT_TRUE(runtime_->start().isOk());
    serverCtx_ = serverContext();
    clientCtx_ = clientContext();
  }
  void TearDown() override {
    runtime_->stop(0ms);
    runtime_->join();
  }

  std::shared_ptr<Script> script(const std::string& side) {
    auto s = std::make_shared<Script>();
    s->side = side;
    s->journal = &journal_;
    return s;
  }

  uint16_t listen(std::shared_ptr<Script> s) {
    endpoint::TcpServerOptions o;
    o.interface = "127.0.0.1";
    auto port = endpoint::TCP4ServerEndpoint(*runtime_, 0, o).listen(api::Factory::forProtocol<Peer>(s));
    EXPECT_TRUE(port.isOk()) << port.status().message();
    if (!port.isOk()) return 0;
    ports_.push_back(std::move(port.value()));
    return ports_.back()->getHost().port();
  }

  void connect(uint16_t port, std::shared_ptr<Script> s) {
    endpoint::TCP4ClientEndpoint client(runtime_->shard(0), "127.0.0.1", port);
    Journal* j = &journal_;
    client.connect(api::Factory::forProtocol<Peer>(s), [j](Result<api::Protocol*> p) {
      if (!p) j->add("client connect failed: " + p.status().message());
    });
  }

  // The seed's server: READY and startTLS on STARTTLS (then more lines, written during the
  // handshake); "secure reply" to "secure text".
  std::shared_ptr<Script> seedServer(api::StartTLSOptions options = {}) {
    auto s = script("server");
    auto ctx = serverCtx_;
    s->line = [ctx, options](Peer& p, std::string_view line) {
      if (line == "STARTTLS") {
        p.sendLine("READY");
        if (p.startTLS(ctx, options).isOk()) {
          p.sendLine("written during the handshake 1");
          p.sendLine("written during the handshake 2");
        }
      } else if (line == "secure text") {
        p.sendLine("secure reply");
      }
    };
    return s;
  }

  // The seed's client: "plain text", "STARTTLS", startTLS on READY, then "secure text" (written
  // during the handshake); closes after "secure reply".
  std::shared_ptr<Script> seedClient(std::shared_ptr<tls::TlsContext> ctx,
                                     api::StartTLSOptions options = {}) {
    auto s = script("client");
    s->made = [](Peer& p) {
      p.sendLine("plain text");
      p.sendLine("STARTTLS");
    };
    s->line = [ctx, options](Peer& p, std::string_view line) {
      if (line == "READY") {
        if (p.startTLS(ctx, options).isOk()) p.sendLine("secure text");
      } else if (line == "secure reply") {
        p.transport()->loseConnection();
      }
    };
    return s;
  }

  // A raw client does the seed's exchange with the seed server: plaintext (in one send or byte
  // by byte), READY, the handshake and "secure text" (ciphertext whole or byte by byte).
  void rawSeedClient(uint16_t port, bool byteByByte) {
    int fd = testutil::connectTo(port);
    ASSERT_GE(fd, 0);
    setNoDelay(fd);
    std::string plain = "plain text\r\nSTARTTLS\r\n";
    if (byteByByte) {
      sendByteByByte(fd, plain);
    } else {
      ASSERT_TRUE(testutil::sendAll(fd, plain));
    }
    EXPECT_EQ(testutil::recvExactly(fd, 7, 10000), "READY\r\n");
    BlockingTls tls(fd, clientCtx_, byteByByte);
    Status st = tls.handshake();
    EXPECT_TRUE(st.isOk()) << st.message();
    EXPECT_TRUE(tls.write("secure text\r\n"));
    std::string got = tls.readUntil("secure reply\r\n");
    EXPECT_EQ(got,
              "written during the handshake 1\r\nwritten during the handshake 2\r\nsecure reply\r\n");
    tls.closeAndWait();
    close(fd);
  }

  std::unique_ptr<reactor::Runtime> runtime_;
  std::vector<std::unique_ptr<endpoint::ListeningPort>> ports_;
  std::shared_ptr<tls::TlsContext> serverCtx_;
  std::shared_ptr<tls::TlsContext> clientCtx_;
  Journal journal_;
};

const Events kSeedServerEvents = {
    "made",
    "line plain text [plain]",
    "line STARTTLS [plain]",
    "starttls ok",
    "handshake TLSv1.3",
    "line secure text [tls]",
    "lost clean",
};

// --- the seed's exchange, whorl on both ends ---

TEST_F(StartTlsTest, SeedExchangeBetweenWhorlServerAndClient) {
  uint16_t port = listen(seedServer());
  connect(port, seedClient(clientCtx_));
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  // connectionMade and handshakeCompleted exactly once on each side; the lines written during
  // the handshake arrive encrypted and in order.
  EXPECT_EQ(journal_.of("server"), kSeedServerEvents) << journal_.dump();
  EXPECT_EQ(journal_.of("client"), (Events{
                                       "made",
                                       "line READY [plain]",
                                       "starttls ok",
                                       "handshake TLSv1.3 peer=localhost",
                                       "line written during the handshake 1 [tls]",
                                       "line written during the handshake 2 [tls]",
                                       "line secure reply [tls]",
                                       "lost clean",
                                   }))
      << journal_.dump();
}

// --- the wire, seen by a raw peer ---

TEST_F(StartTlsTest, PlaintextWrittenBeforeStartTlsGoesOutFirstInClear) {
  // The server writes 1 MiB of plaintext and READY (its transport pauses: more than the
  // high-water mark is unsent), then starts TLS as the TLS client (normal=false, so the TLS
  // bytes are the server's own ClientHello) and writes a line during the handshake.
  const std::string bulk(1 << 20, 'p');
  auto s = script("server");
  auto ctx = clientCtx_;
  s->line = [ctx, bulk](Peer& p, std::string_view line) {
    if (line != "STARTTLS") return;
    p.transport()->write(bulk);
    p.sendLine("READY");
    if (p.startTLS(ctx, {.normal = false}).isOk()) p.sendLine("written during the handshake");
  };
  uint16_t port = listen(s);
  int fd = testutil::connectTo(port);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testutil::sendAll(fd, "STARTTLS\r\n"));
  std::string clear = testutil::recvExactly(fd, bulk.size() + 7, 10000);
  ASSERT_EQ(clear.size(), bulk.size() + 7);
  EXPECT_TRUE(clear == bulk + "READY\r\n") << "the plaintext was not sent whole and first";
  std::string header = testutil::recvExactly(fd, 3, 10000);
  ASSERT_EQ(header.size(), 3u);
  EXPECT_EQ(header[0], '\x16') << "not a TLS handshake record";
  EXPECT_EQ(header[1], '\x03');
  BlockingTls tls(fd, serverCtx_);
  Status st = tls.handshake(header);
  EXPECT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(tls.readUntil("\r\n"), "written during the handshake\r\n");
  tls.closeAndWait();
  close(fd);
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  EXPECT_EQ(journal_.of("server"), (Events{"made", "line STARTTLS [plain]", "starttls ok",
                                           "handshake TLSv1.3 peer=localhost", "lost clean"}))
      << journal_.dump();
}

TEST_F(StartTlsTest, InputInOneChunkAndByteByByteGiveTheSameResult) {
  uint16_t port = listen(seedServer());
  rawSeedClient(port, /*byteByByte=*/false);
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  Events chunk = journal_.of("server");
  EXPECT_EQ(chunk, kSeedServerEvents) << journal_.dump();

  Journal bytes;
  auto s = seedServer();
  s->journal = &bytes;
  port = listen(s);
  rawSeedClient(port, /*byteByByte=*/true);
  ASSERT_TRUE(bytes.waitFor("server lost")) << bytes.dump();
  EXPECT_EQ(bytes.of("server"), chunk) << bytes.dump();
}

// --- plaintext pipelined behind STARTTLS (CVE-2011-0411) ---

TEST_F(StartTlsTest, CommandPipelinedBehindStartTlsIsRejected) {
  uint16_t port = listen(seedServer());
  int fd = testutil::connectTo(port);
  ASSERT_GE(fd, 0);
  setNoDelay(fd);
  ASSERT_TRUE(testutil::sendAll(fd, "STARTTLS\r\nEVIL COMMAND\r\n"));
  int err = -2;
  std::string got = testutil::recvUntilEof(fd, &err, 10000);
  EXPECT_NE(err, -1) << "the server did not close the connection";
  // The go-ahead was still delivered; nothing else (no TLS, no reply to the injected command).
  EXPECT_EQ(got, "READY\r\n");
  close(fd);
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  Events ev = journal_.of("server");
  ASSERT_EQ(ev.size(), 4u) << journal_.dump();
  EXPECT_EQ(ev[0], "made");
  EXPECT_EQ(ev[1], "line STARTTLS [plain]");
  EXPECT_EQ(ev[2], "starttls ok");
  EXPECT_NE(ev[3].find("lost plaintext pipelined after STARTTLS"), std::string::npos) << ev[3];
  EXPECT_NE(ev[3].find("CVE-2011-0411"), std::string::npos) << ev[3];
  EXPECT_FALSE(journal_.contains("EVIL"));
}

TEST_F(StartTlsTest, CommandPipelinedBehindStartTlsIsDiscardedWhenAskedTo) {
  uint16_t port = listen(seedServer({.pipelined = api::PipelinedInput::kDiscard}));
  int fd = testutil::connectTo(port);
  ASSERT_GE(fd, 0);
  setNoDelay(fd);
  ASSERT_TRUE(testutil::sendAll(fd, "STARTTLS\r\nEVIL COMMAND\r\n"));
  EXPECT_EQ(testutil::recvExactly(fd, 7, 10000), "READY\r\n");
  BlockingTls tls(fd, clientCtx_);
  Status st = tls.handshake();
  EXPECT_TRUE(st.isOk()) << st.message();
  EXPECT_TRUE(tls.write("secure text\r\n"));
  EXPECT_NE(tls.readUntil("secure reply\r\n").find("secure reply\r\n"), std::string::npos);
  tls.closeAndWait();
  close(fd);
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  EXPECT_EQ(journal_.of("server"), (Events{"made", "line STARTTLS [plain]", "starttls ok",
                                           "handshake TLSv1.3", "line secure text [tls]",
                                           "lost clean"}))
      << journal_.dump();
}

TEST_F(StartTlsTest, InjectedLinesInLaterSegmentsNeverReachTheProtocol) {
  // The injected command in its own segment, right behind STARTTLS: whether it lands in the
  // same read, a read in flight at the switch or a later one, it is never delivered as
  // plaintext (rejected, or fed to TLS where it fails the handshake).
  for (int round = 0; round < 5; ++round) {
    Journal j;
    auto s = seedServer();
    s->journal = &j;
    uint16_t port = listen(s);
    int fd = testutil::connectTo(port);
    ASSERT_GE(fd, 0);
    setNoDelay(fd);
    ASSERT_TRUE(testutil::sendAll(fd, "STARTTLS\r\n"));
    ASSERT_TRUE(testutil::sendAll(fd, "EVIL COMMAND\r\nMORE\r\n"));
    int err = -2;
    std::string got = testutil::recvUntilEof(fd, &err, 10000);
    EXPECT_NE(err, -1) << "the server did not close the connection";
    EXPECT_EQ(got.substr(0, 7), "READY\r\n");
    close(fd);
    ASSERT_TRUE(j.waitFor("server lost")) << j.dump();
    EXPECT_FALSE(j.contains("EVIL")) << j.dump();
    EXPECT_FALSE(j.contains("MORE")) << j.dump();
    EXPECT_FALSE(j.contains("lost clean")) << j.dump();
  }
}

// --- a ClientHello pipelined with STARTTLS, for protocols that allow it ---

TEST_F(StartTlsTest, ClientHelloPipelinedWithStartTlsIsUsedAsTls) {
  // Split points of the ClientHello: 0 sends STARTTLS alone and the ClientHello in a second
  // segment right behind it; others put part of the ClientHello in STARTTLS's segment (taken
  // back from the LineReceiver) and the rest in the next.
  for (size_t split : {size_t(0), size_t(1), size_t(5), size_t(40), size_t(100000)}) {
    SCOPED_TRACE("split " + std::to_string(split));
    Journal j;
    auto s = seedServer({.pipelined = api::PipelinedInput::kUseAsTls});
    s->journal = &j;
    uint16_t port = listen(s);
    int fd = testutil::connectTo(port);
    ASSERT_GE(fd, 0);
    setNoDelay(fd);
    BlockingTls tls(fd, clientCtx_);
    std::string hello = tls.clientHello();
    ASSERT_GT(hello.size(), 100u);
    split = std::min(split, hello.size());
    ASSERT_TRUE(testutil::sendAll(fd, "STARTTLS\r\n" + hello.substr(0, split)));
    if (split < hello.size()) {
      ASSERT_TRUE(testutil::sendAll(fd, hello.substr(split)));
    }
    EXPECT_EQ(testutil::recvExactly(fd, 7, 10000), "READY\r\n");
    Status st = tls.handshake();
    EXPECT_TRUE(st.isOk()) << st.message();
    EXPECT_TRUE(tls.write("secure text\r\n"));
    EXPECT_NE(tls.readUntil("secure reply\r\n").find("secure reply\r\n"), std::string::npos);
    tls.closeAndWait();
    close(fd);
    ASSERT_TRUE(j.waitFor("server lost")) << j.dump();
    EXPECT_EQ(j.of("server"), (Events{"made", "line STARTTLS [plain]", "starttls ok",
                                      "handshake TLSv1.3", "line secure text [tls]", "lost clean"}))
        << j.dump();
  }
}

// --- the client side: bytes behind the go-ahead are discarded (CVE-2021-23222 class) ---

TEST_F(StartTlsTest, ClientDiscardsBytesTheServerSendsBehindReady) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  Address a = Address::loopbackIPv4(0);
  ASSERT_EQ(bind(lfd, a.addr(), a.length()), 0);
  ASSERT_EQ(::listen(lfd, 1), 0);
  uint16_t port = Address::fromSocketName(lfd).port();

  connect(port, seedClient(clientCtx_));
  pollfd p{lfd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  int fd = accept(lfd, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  close(lfd);
  setNoDelay(fd);
  std::string want = "plain text\r\nSTARTTLS\r\n";
  EXPECT_EQ(testutil::recvExactly(fd, want.size(), 10000), want);
  // A man in the middle appends plaintext to the go-ahead, in the same segment.
  ASSERT_TRUE(testutil::sendAll(fd, "READY\r\nINJECTED\r\n"));
  // The client's next bytes are its ClientHello, and the handshake goes on.
  std::string header = testutil::recvExactly(fd, 3, 10000);
  ASSERT_EQ(header.size(), 3u);
  EXPECT_EQ(header[0], '\x16');
  EXPECT_EQ(header[1], '\x03');
  BlockingTls tls(fd, serverCtx_);
  Status st = tls.handshake(header);
  EXPECT_TRUE(st.isOk()) << st.message();
  EXPECT_EQ(tls.readUntil("secure text\r\n"), "secure text\r\n");
  EXPECT_TRUE(tls.write("secure reply\r\n"));
  tls.closeAndWait();
  close(fd);
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  EXPECT_EQ(journal_.of("client"),
            (Events{"made", "line READY [plain]", "starttls ok", "handshake TLSv1.3 peer=localhost",
                    "line secure reply [tls]", "lost clean"}))
      << journal_.dump();
  EXPECT_FALSE(journal_.contains("INJECTED"));
}

// --- misuse is an error Status, and the connection keeps working ---

TEST_F(StartTlsTest, StartTlsTwiceIsAnErrorAndTheConnectionStillWorks) {
  auto server = seedServer();
  auto ctx = serverCtx_;
  server->line = [ctx](Peer& p, std::string_view line) {
    if (line == "STARTTLS") {
      p.sendLine("READY");
      EXPECT_TRUE(p.startTLS(ctx).isOk());
      EXPECT_FALSE(p.startTLS(ctx).isOk());
    } else if (line == "secure text") {
      p.sendLine("secure reply");
    }
  };
  auto client = seedClient(clientCtx_);
  auto cctx = clientCtx_;
  client->line = [cctx](Peer& p, std::string_view line) {
    if (line == "READY") {
      EXPECT_TRUE(p.startTLS(cctx).isOk());
      EXPECT_FALSE(p.startTLS(cctx).isOk());
      p.sendLine("secure text");
    } else if (line == "secure reply") {
      p.transport()->loseConnection();
    }
  };
  uint16_t port = listen(server);
  connect(port, client);
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  const std::string twice = "starttls error: startTLS: this connection already uses TLS";
  EXPECT_EQ(journal_.of("server"),
            (Events{"made", "line plain text [plain]", "line STARTTLS [plain]", "starttls ok", twice,
                    "handshake TLSv1.3", "line secure text [tls]", "lost clean"}))
      << journal_.dump();
  EXPECT_EQ(journal_.of("client"),
            (Events{"made", "line READY [plain]", "starttls ok", twice,
                    "handshake TLSv1.3 peer=localhost", "line secure reply [tls]", "lost clean"}))
      << journal_.dump();
}

TEST_F(StartTlsTest, StartTlsOnATlsConnectionIsAnError) {
  auto server = script("server");
  auto ctx = serverCtx_;
  server->handshake = [ctx](Peer& p) { (void)p.startTLS(ctx); };
  server->line = [](Peer& p, std::string_view) { p.sendLine("still here"); };
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
  auto o = pc->options();
  o.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
  auto listening = endpoint::SSL4ServerEndpoint(*runtime_, 0, o, tcp)
                       .listen(api::Factory::forProtocol<Peer>(server));
  ASSERT_TRUE(listening.isOk()) << listening.status().message();
  auto client = script("client");
  client->handshake = [](Peer& p) { p.sendLine("hello"); };
  client->line = [](Peer& p, std::string_view) { p.transport()->loseConnection(); };
  auto copts = tls::optionsForClientTLS(
      "localhost", tls::trustRootFromCertificates({*tls::Certificate::loadPEMFile(cert("test/ca.pem"))}));
  endpoint::SSL4ClientEndpoint(runtime_->shard(1), "127.0.0.1", (*listening)->getHost().port(), copts)
      .connect(api::Factory::forProtocol<Peer>(client), [](Result<api::Protocol*>) {});
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  EXPECT_EQ(journal_.of("server"),
            (Events{"made", "handshake TLSv1.3",
                    "starttls error: startTLS: this connection already uses TLS",
                    "line hello [tls]", "lost clean"}))
      << journal_.dump();
  EXPECT_EQ(journal_.of("client"), (Events{"made", "handshake TLSv1.3 peer=localhost",
                                           "line still here [tls]", "lost clean"}))
      << journal_.dump();
}

TEST_F(StartTlsTest, WrongRoleIsAnErrorNamingTheRoles) {
  // Each side is handed the other side's options: both calls fail and say why; the
  // connection goes on in plaintext.
  auto server = script("server");
  auto cctx = clientCtx_;
  server->line = [cctx](Peer& p, std::string_view line) {
    if (line == "STARTTLS") {
      if (!p.startTLS(cctx).isOk()) p.sendLine("NO");
    } else if (line == "still plain") {
      p.transport()->loseConnection();
    }
  };
  auto client = script("client");
  auto sctx = serverCtx_;
  client->made = [sctx](Peer& p) {
    (void)p.startTLS(sctx);
    p.sendLine("STARTTLS");
  };
  client->line = [](Peer& p, std::string_view line) {
    if (line == "NO") p.sendLine("still plain");
  };
  uint16_t port = listen(server);
  connect(port, client);
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  EXPECT_EQ(journal_.of("server"),
            (Events{"made", "line STARTTLS [plain]",
                    "starttls error: startTLS: this side acts as TLS server (accepted connection, "
                    "normal=true) but was given client options (optionsForClientTLS)",
                    "line still plain [plain]", "lost clean"}))
      << journal_.dump();
  EXPECT_EQ(journal_.of("client"),
            (Events{"made",
                    "starttls error: startTLS: this side acts as TLS client (outgoing connection, "
                    "normal=true) but was given server options (CertificateOptions)",
                    "line NO [plain]", "lost clean"}))
      << journal_.dump();
}

// --- the options types Twisted users pass: a certificate's options() and optionsForClientTLS ---

// The seed's shape: `options = cert.options()` once, `transport.startTLS(options)` per
// connection; the client passes optionsForClientTLS(name, authority) with a Certificate root.
TEST_F(StartTlsTest, CertificateOptionsAndClientOptionsGoStraightToStartTls) {
  std::string pem;
  for (const char* name : {"test/localhost.pem", "test/intermediate.pem"}) {
    std::ifstream in(cert(name));
    std::stringstream ss;
    ss << in.rdbuf();
    pem += ss.str();
  }
  auto pc = tls::PrivateCertificate::loadPEM(pem);  // key, certificate and chain
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  tls::TLSOptions serverOptions = pc->options();
  auto authority = tls::Certificate::loadPEMFile(cert("test/ca.pem"));
  ASSERT_TRUE(authority.isOk());
  tls::TLSOptions clientOptions = tls::optionsForClientTLS("localhost", *authority);

  auto server = script("server");
  server->line = [serverOptions](Peer& p, std::string_view line) {
    if (line == "STARTTLS") {
      p.sendLine("READY");
      Status st = p.transport()->startTLS(serverOptions);
      p.note(st.isOk() ? "starttls ok" : "starttls error: " + st.message());
    } else if (line == "secure text") {
      p.sendLine("secure reply");
    }
  };
  auto client = seedClient(nullptr);
  client->line = [clientOptions](Peer& p, std::string_view line) {
    if (line == "READY") {
      Status st = p.transport()->startTLS(clientOptions);
      p.note(st.isOk() ? "starttls ok" : "starttls error: " + st.message());
      p.sendLine("secure text");
    } else if (line == "secure reply") {
      p.transport()->loseConnection();
    }
  };
  uint16_t port = listen(server);
  connect(port, client);
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  EXPECT_EQ(journal_.of("server"), kSeedServerEvents) << journal_.dump();
  EXPECT_EQ(journal_.of("client"),
            (Events{"made", "line READY [plain]", "starttls ok", "handshake TLSv1.3 peer=localhost",
                    "line secure reply [tls]", "lost clean"}))
      << journal_.dump();
}

TEST_F(StartTlsTest, OptionsThatFailedToBuildAreStartTlsErrorWithTheReason) {
  // No TLS 1.2 cipher while only TLS 1.2 is allowed: building the context fails, and startTLS
  // says so; the connection goes on in plaintext.
  auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  tls::CertificateOptions broken = pc->options();
  broken.acceptableCiphers = *tls::AcceptableCiphers::fromOpenSSLCipherString("");
  broken.lowerMaximumSecurityTo = tls::TLSVersion::TLSv1_2;
  tls::TLSOptions options = broken;
  ASSERT_FALSE(options.isOk());

  auto server = script("server");
  server->line = [options](Peer& p, std::string_view line) {
    if (line == "STARTTLS") {
      Status st = p.transport()->startTLS(options);
      p.note(st.isOk() ? "starttls ok" : "starttls error: " + st.message());
      p.sendLine(st.isOk() ? "READY" : "NO");
    } else if (line == "still plain") {
      p.transport()->loseConnection();
    }
  };
  auto client = script("client");
  client->made = [](Peer& p) { p.sendLine("STARTTLS"); };
  client->line = [](Peer& p, std::string_view line) {
    if (line == "NO") p.sendLine("still plain");
  };
  uint16_t port = listen(server);
  connect(port, client);
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  EXPECT_EQ(journal_.of("server"),
            (Events{"made", "line STARTTLS [plain]",
                    "starttls error: acceptableCiphers selects no TLS 1.2 cipher but TLS 1.3 is "
                    "not allowed",
                    "line still plain [plain]", "lost clean"}))
      << journal_.dump();
  EXPECT_EQ(journal_.of("client"), (Events{"made", "line NO [plain]", "lost clean"}))
      << journal_.dump();
}

// --- normal=false: the TCP server is the TLS client ---

TEST_F(StartTlsTest, ReversedRolesWork) {
  auto server = seedServer();
  auto cctx = clientCtx_;
  server->line = [cctx](Peer& p, std::string_view line) {
    if (line == "STARTTLS") {
      p.sendLine("READY");
      if (p.startTLS(cctx, {.normal = false}).isOk()) p.sendLine("written during the handshake");
    } else if (line == "secure text") {
      p.sendLine("secure reply");
    }
  };
  uint16_t port = listen(server);
  connect(port, seedClient(serverCtx_, {.normal = false}));
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  // The server (TLS client) verified the TCP client's certificate.
  EXPECT_EQ(journal_.of("server"),
            (Events{"made", "line plain text [plain]", "line STARTTLS [plain]", "starttls ok",
                    "handshake TLSv1.3 peer=localhost", "line secure text [tls]", "lost clean"}))
      << journal_.dump();
  EXPECT_EQ(journal_.of("client"),
            (Events{"made", "line READY [plain]", "starttls ok", "handshake TLSv1.3",
                    "line written during the handshake [tls]", "line secure reply [tls]",
                    "lost clean"}))
      << journal_.dump();
}

// --- a failed handshake ends the connection on both sides with the reason ---

TEST_F(StartTlsTest, HandshakeFailureAfterStartTls) {
  uint16_t port = listen(seedServer());
  connect(port, seedClient(clientContext("test/other-ca.pem")));
  ASSERT_TRUE(journal_.waitFor("server lost")) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost")) << journal_.dump();
  Events c = journal_.of("client");
  ASSERT_EQ(c.size(), 4u) << journal_.dump();
  EXPECT_EQ(c[0], "made");
  EXPECT_EQ(c[1], "line READY [plain]");
  EXPECT_EQ(c[2], "starttls ok");
  EXPECT_EQ(c[3].rfind("lost TLS handshake failed: certificate verify failed: unknown authority", 0), 0u)
      << c[3];
  Events s = journal_.of("server");
  ASSERT_EQ(s.size(), 5u) << journal_.dump();
  EXPECT_EQ(s[3], "starttls ok");
  EXPECT_EQ(s[4].rfind("lost ", 0), 0u);
  EXPECT_NE(s[4], "lost clean");
  EXPECT_FALSE(journal_.contains("handshake TLS")) << journal_.dump();
  EXPECT_FALSE(journal_.contains("[tls]")) << journal_.dump();
}

// --- 16 MiB each way after the upgrade ---

TEST_F(StartTlsTest, LargeTransfersAfterTheUpgrade) {
  constexpr size_t kSize = 16 << 20;
  auto up = std::make_shared<const std::string>(testutil::randomBytes(kSize, 1));
  auto down = std::make_shared<const std::string>(testutil::randomBytes(kSize, 2));
  auto server = seedServer();
  server->bulk = [down](Peer& p, size_t, uint64_t) {
    p.sendLine("BULK " + std::to_string(down->size()));
    p.transport()->write(*down);
  };
  auto client = seedClient(clientCtx_);
  client->line = [ctx = clientCtx_, up](Peer& p, std::string_view line) {
    if (line == "READY" && p.startTLS(ctx).isOk()) {
      // Written during the handshake: held, encrypted, then sent with flow control.
      p.sendLine("BULK " + std::to_string(up->size()));
      p.transport()->write(*up);
    }
  };
  client->bulk = [](Peer& p, size_t, uint64_t) { p.transport()->loseConnection(); };
  uint16_t port = listen(server);
  connect(port, client);
  ASSERT_TRUE(journal_.waitFor("server lost", 120s)) << journal_.dump();
  ASSERT_TRUE(journal_.waitFor("client lost", 120s)) << journal_.dump();
  std::string upSum = "bulk " + std::to_string(kSize) + " " + std::to_string(fnv1a(kFnvOffset, *up));
  std::string downSum = "bulk " + std::to_string(kSize) + " " + std::to_string(fnv1a(kFnvOffset, *down));
  EXPECT_EQ(journal_.of("server"),
            (Events{"made", "line plain text [plain]", "line STARTTLS [plain]", "starttls ok",
                    "handshake TLSv1.3", "line BULK 16777216 [tls]", upSum, "lost clean"}))
      << journal_.dump();
  EXPECT_EQ(journal_.of("client"),
            (Events{"made", "line READY [plain]", "starttls ok", "handshake TLSv1.3 peer=localhost",
                    "line written during the handshake 1 [tls]",
                    "line written during the handshake 2 [tls]", "line BULK 16777216 [tls]",
                    downSum, "lost clean"}))
      << journal_.dump();
}

}  // namespace
}  // namespace whorl
