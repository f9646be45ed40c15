// TLS over real sockets against peers nobody here wrote: openssl s_client and s_server (TLS 1.2
// and 1.3, client certificates, ALPN), Python's ssl module, and hostile or broken clients (garbage,
// plain HTTP, a stalled handshake, TLS 1.0 only). The server must keep serving everyone else.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <mutex>
#include <thread>

#include "framework/endpoint/tls_endpoint.h"
#include "framework/base/ktls_probe.h"
#include "framework/tls/tls_layer.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "tests/socket_util.h"
#include "tests/subprocess.h"

namespace whorl {
namespace {

using namespace std::chrono_literals;
using testutil::Subprocess;

std::string cert(const std::string& name) {
  return std::string(std::getenv("TEST_SRCDIR")) + "/whorl/certs/" + name;
}

// What the server's protocols saw, for assertions from the test thread.
struct Journal {
  std::mutex mu;
  std::vector<std::string> handshakes;  // "TLSv1.3 TLS_AES_256_GCM_SHA384 alpn=h2 peer=CN"
  std::vector<Status> losses;
  std::condition_variable cv;

  void addHandshake(std::string s) {
    std::lock_guard<std::mutex> l(mu);
    handshakes.push_back(std::move(s));
    cv.notify_all();
  }
  void addLoss(Status s) {
    std::lock_guard<std::mutex> l(mu);
    losses.push_back(std::move(s));
    cv.notify_all();
  }
  // Waits for a loss whose reason contains `text`.
  bool waitForLoss(const std::string& text, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, timeout, [&] {
      for (const auto& s : losses) {
        if (s.message().find(text) != std::string::npos) return true;
      }
      return false;
    });
  }
  std::string lossesText() {
    std::lock_guard<std::mutex> l(mu);
    std::string all;
    for (const auto& s : losses) all += s.toString() + "\n";
    return all;
  }
  bool waitForHandshake(const std::string& text, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, timeout, [&] {
      for (const auto& s : handshakes) {
        if (s.find(text) != std::string::npos) return true;
      }
      return false;
    });
  }
};

class RecordingEcho : public api::Protocol {
 public:
  explicit RecordingEcho(Journal* j) : j_(j) {}
  void handshakeCompleted() override {
    auto* t = transport();
    std::string peer = "none";
    if (auto x = t->getPeerCertificate()) peer = tls::Certificate(x).commonName();
    j_->addHandshake(t->tlsVersion() + " " + t->cipher() +
                     " alpn=" + t->negotiatedProtocol().value_or("none") + " peer=" + peer);
  }
  void dataReceived(std::string_view data) override { transport()->write(data); }
  void connectionLost(const Status& reason) override { j_->addLoss(reason); }

 private:
  Journal* j_;
};

class TlsLoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reactor::RuntimeOptions ro;
    ro.shards = 2;
    ro.pinThreads = false;
    runtime_ = std::make_unique<reactor::Runtime>(ro);
    ASSERT_TRUE(runtime_->start().isOk());
  }
  void TearDown() override {
    runtime_->stop(0ms);
    runtime_->join();
  }

  tls::CertificateOptions serverOptions() {
    auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
    EXPECT_TRUE(pc.isOk()) << pc.status().message();
    auto o = pc->options();
    o.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
    return o;
  }
  uint16_t listen(tls::CertificateOptions options) {
    endpoint::TcpServerOptions tcp;
    tcp.interface = "127.0.0.1";
    auto port = endpoint::SSL4ServerEndpoint(*runtime_, 0, std::move(options), tcp)
                    .listen(api::Factory::forProtocol<RecordingEcho>(&journal_));
    EXPECT_TRUE(port.isOk()) << port.status().message();
    if (!port.isOk()) return 0;
    ports_.push_back(std::move(port.value()));
    return ports_.back()->getHost().port();
  }
  // openssl s_client sending `line`; returns its output once the echo came back (or timed out).
  std::string sClientEcho(uint16_t port, std::vector<std::string> extra, const std::string& line) {
    std::vector<std::string> argv = {"openssl", "s_client", "-connect",
                                     "127.0.0.1:" + std::to_string(port), "-CAfile",
                                     cert("test/ca.pem"), "-verify_hostname", "localhost",
                                     "-verify_return_error", "-quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Subprocess p(argv);
    p.writeStdin(line + "\n");
    std::string out = p.readStdoutUntil(line, 10s);
    return out;
  }

  std::unique_ptr<reactor::Runtime> runtime_;
  std::vector<std::unique_ptr<endpoint::ListeningPort>> ports_;
  Journal journal_;
};

TEST_F(TlsLoopbackTest, OpenSslClientTls13AndTls12) {
  uint16_t port = listen(serverOptions());
  EXPECT_NE(sClientEcho(port, {"-tls1_3"}, "hello over 1.3").find("hello over 1.3"), std::string::npos);
  EXPECT_TRUE(journal_.waitForHandshake("TLSv1.3 TLS_"));
  EXPECT_NE(sClientEcho(port, {"-tls1_2"}, "hello over 1.2").find("hello over 1.2"), std::string::npos);
  EXPECT_TRUE(journal_.waitForHandshake("TLSv1.2 ECDHE-ECDSA-"));
}

TEST_F(TlsLoopbackTest, OpenSslClientCertificates) {
  auto o = serverOptions();
  o.trustRoot = tls::trustRootFromCertificates({*tls::Certificate::loadPEMFile(cert("test/ca.pem"))});
  uint16_t port = listen(o);
  for (std::string v : {"-tls1_3", "-tls1_2"}) {
    SCOPED_TRACE(v);
    std::string out = sClientEcho(port,
                                  {v, "-cert", cert("test/client.pem"), "-key", cert("test/client.pem"),
                                   "-cert_chain", cert("test/intermediate.pem")},
                                  "with a client certificate");
    EXPECT_NE(out.find("with a client certificate"), std::string::npos) << out;
    EXPECT_TRUE(journal_.waitForHandshake("peer=whorl test client"));
  }
  // Without a certificate nothing is echoed and the server says why.
  std::string out = sClientEcho(port, {"-tls1_3"}, "no certificate");
  EXPECT_EQ(out.find("no certificate\n"), std::string::npos) << out;
  EXPECT_TRUE(journal_.waitForLoss("peer did not return a certificate")) << journal_.lossesText();
}

TEST_F(TlsLoopbackTest, OpenSslClientAlpn) {
  auto o = serverOptions();
  o.acceptableProtocols = {"h2", "http/1.1"};
  uint16_t port = listen(o);
  Subprocess p({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-CAfile",
                cert("test/ca.pem"), "-alpn", "http/1.1,h2"});
  std::string out = p.readStdoutUntil("ALPN protocol:", 10s);
  p.readStdoutUntil("\n", 2s);
  EXPECT_NE(p.output().find("ALPN protocol: h2"), std::string::npos) << out;
  EXPECT_TRUE(journal_.waitForHandshake("alpn=h2"));
}

TEST_F(TlsLoopbackTest, PythonSslModuleMovesSixtyFourMebibytes) {
  uint16_t port = listen(serverOptions());
  // asyncio drives one SSL object from one thread. Sending from a second thread while the first
  // reads (the obvious script) shares the SSL object across threads, which OpenSSL does not allow:
  // CPython releases the GIL inside SSL_read and SSL_write, and the client crashed once that way.
  const char* script = R"PY(
import asyncio, hashlib, os, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
data = os.urandom(64 << 20)
async def main():
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    async def send():
        w.write(data)
        await w.drain()
    t = asyncio.create_task(send())
    h = hashlib.sha256()
    n = 0
    while n < len(data):
        b = await r.read(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    await t
    print("version", w.get_extra_info("ssl_object").version())
    print("match" if h.digest() == hashlib.sha256(data).digest() and n == len(data) else "MISMATCH %d" % n)
    w.close()
asyncio.run(main())
)PY";
  Subprocess p({"python3", "-c", script, std::to_string(port), cert("test/ca.pem")});
  int rc = p.wait(120s);
  EXPECT_EQ(rc, 0) << p.output();
  EXPECT_NE(p.output().find("version TLSv1.3"), std::string::npos) << p.output();
  EXPECT_NE(p.output().find("match"), std::string::npos) << p.output();
}

// --- whorl as the client, openssl s_server as the peer ---

uint16_t freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  Address a = Address::loopbackIPv4(0);
  bind(fd, a.addr(), a.length());
  uint16_t p = Address::fromSocketName(fd).port();
  close(fd);
  return p;
}

class Collector : public api::Protocol {
 public:
  // The promise is shared: a connect that fails early returns before the protocol is gone.
  Collector(std::shared_ptr<std::promise<std::string>> done, std::string send, std::string until)
      : done_(std::move(done)), send_(std::move(send)), until_(std::move(until)) {}
  void connectionMade() override { transport()->write(send_); }
  void dataReceived(std::string_view data) override {
    got_.append(data);
    if (got_.find(until_) != std::string::npos && !reported_) {
      reported_ = true;
      done_->set_value(got_ + " alpn=" + transport()->negotiatedProtocol().value_or("none") +
                       " version=" + transport()->tlsVersion());
      transport()->loseConnection();
    }
  }
  void connectionLost(const Status& r) override {
    if (!reported_) done_->set_value("lost: " + r.message());
  }

 private:
  std::shared_ptr<std::promise<std::string>> done_;
  std::string send_, until_, got_;
  bool reported_ = false;
};

// Starts s_server and waits until it accepts.
std::unique_ptr<Subprocess> startSServer(uint16_t port, std::vector<std::string> extra) {
  std::vector<std::string> argv = {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                                   "-cert", cert("test/localhost.pem"), "-key", cert("test/localhost.pem"),
                                   "-cert_chain", cert("test/intermediate.pem"), "-rev"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto p = std::make_unique<Subprocess>(argv);
  p->readStdoutUntil("ACCEPT", 10s);
  return p;
}

std::string whorlClient(reactor::Runtime& rt, uint16_t port, tls::TLSOptions options) {
  auto done = std::make_shared<std::promise<std::string>>();
  auto connected = std::make_shared<std::promise<Status>>();
  endpoint::SSL4ClientEndpoint client(rt.shard(0), "localhost", port, options);
  client.connect(api::Factory::forProtocol<Collector>(done, std::string("whorl\n"), std::string("lrohw")),
                 [connected](Result<api::Protocol*> r) { connected->set_value(r.status()); });
  auto cf = connected->get_future();
  if (cf.wait_for(10s) != std::future_status::ready) return "connect timed out";
  Status s = cf.get();
  if (!s.isOk()) return "connect failed: " + s.message();
  auto f = done->get_future();
  if (f.wait_for(10s) != std::future_status::ready) return "no reply";
  return f.get();
}

tls::TrustRoot testCa() {
  return tls::trustRootFromCertificates({*tls::Certificate::loadPEMFile(cert("test/ca.pem"))});
}

TEST_F(TlsLoopbackTest, WhorlClientAgainstOpenSslServer) {
  for (std::string v : {"-tls1_3", "-tls1_2"}) {
    SCOPED_TRACE(v);
    uint16_t port = freePort();
    auto server = startSServer(port, {v});
    auto options = tls::optionsForClientTLS("localhost", testCa());
    ASSERT_TRUE(options.isOk()) << options.status().message();
    std::string got = whorlClient(*runtime_, port, options);
    EXPECT_NE(got.find("lrohw"), std::string::npos) << got << server->output();
    EXPECT_NE(got.find(v == "-tls1_3" ? "version=TLSv1.3" : "version=TLSv1.2"), std::string::npos) << got;
  }
}

TEST_F(TlsLoopbackTest, WhorlClientCertificateAndAlpnAgainstOpenSslServer) {
  uint16_t port = freePort();
  auto server = startSServer(port, {"-Verify", "2", "-verify_return_error", "-CAfile", cert("test/ca.pem"), "-alpn", "h2,http/1.1"});
  // The client key with its certificate and the intermediate (client-chain.pem), so the server
  // can build the path to the root it trusts.
  auto readAll = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  auto full = tls::PrivateCertificate::loadPEM(readAll(cert("test/client.pem")) +
                                               readAll(cert("test/intermediate.pem")));
  ASSERT_TRUE(full.isOk()) << full.status().message();
  ASSERT_EQ(full->chain().size(), 1u);
  auto options = tls::optionsForClientTLS("localhost", testCa(), *full, {"http/1.1", "h2"});
  ASSERT_TRUE(options.isOk()) << options.status().message();
  std::string got = whorlClient(*runtime_, port, options);
  EXPECT_NE(got.find("lrohw"), std::string::npos) << got << "\n" << server->output();
  EXPECT_NE(got.find("alpn=h2"), std::string::npos) << got;
}

// --- the options Twisted users pass, straight: cert.options(), a Certificate as trust root ---

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(TlsLoopbackTest, ListenSslTakesACertificatesOptions) {
  // Key, certificate and intermediate in one PEM: options() presents the chain.
  auto pc = tls::PrivateCertificate::loadPEM(readText(cert("test/localhost.pem")) +
                                             readText(cert("test/intermediate.pem")));
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  auto factory = api::Factory::forProtocol<RecordingEcho>(&journal_);
  auto port = endpoint::listenSSL(*runtime_, 0, factory, pc->options(), "127.0.0.1");
  ASSERT_TRUE(port.isOk()) << port.status().message();
  std::string out = sClientEcho((*port)->getHost().port(), {}, "straight from options()");
  EXPECT_NE(out.find("straight from options()"), std::string::npos) << out;
}

TEST_F(TlsLoopbackTest, ListenReportsOptionsThatFailedToBuildAndClientOptions) {
  // No TLS 1.2 cipher while only TLS 1.2 is allowed: the build fails; listen says why.
  auto broken = serverOptions();
  broken.acceptableCiphers = *tls::AcceptableCiphers::fromOpenSSLCipherString("");
  broken.lowerMaximumSecurityTo = tls::TLSVersion::TLSv1_2;
  auto factory = api::Factory::forProtocol<RecordingEcho>(&journal_);
  auto port = endpoint::listenSSL(*runtime_, 0, factory, broken, "127.0.0.1");
  ASSERT_FALSE(port.isOk());
  EXPECT_EQ(port.status().message(),
            "acceptableCiphers selects no TLS 1.2 cipher but TLS 1.3 is not allowed");
  // Client options cannot serve.
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  tls::TLSOptions clientOptions = tls::optionsForClientTLS("localhost", testCa());
  auto client = endpoint::SSL4ServerEndpoint(*runtime_, 0, clientOptions, tcp).listen(factory);
  ASSERT_FALSE(client.isOk());
  EXPECT_NE(client.status().message().find("needs server options"), std::string::npos)
      << client.status().message();
}

TEST_F(TlsLoopbackTest, ConnectReportsOptionsThatFailedToBuildAndServerOptions) {
  uint16_t port = listen(serverOptions());
  EXPECT_EQ(whorlClient(*runtime_, port, tls::optionsForClientTLS("", testCa())),
            "connect failed: optionsForClientTLS needs a hostname");
  std::string got = whorlClient(*runtime_, port, serverOptions());
  EXPECT_NE(got.find("connect failed: a TLS client needs client options"), std::string::npos) << got;
}

TEST_F(TlsLoopbackTest, WhorlClientTrustsACertificateOrAVectorOfThem) {
  auto ca = tls::Certificate::loadPEMFile(cert("test/ca.pem"));
  auto other = tls::Certificate::loadPEMFile(cert("test/other-ca.pem"));
  ASSERT_TRUE(ca.isOk() && other.isOk());
  uint16_t port = freePort();
  auto server = startSServer(port, {});
  struct Case {
    const char* name;
    tls::TLSOptions options;
    bool verifies;
  };
  const Case cases[] = {
      {"the authority", tls::optionsForClientTLS("localhost", *ca), true},
      {"a vector holding it", tls::optionsForClientTLS("localhost", std::vector{*other, *ca}), true},
      {"another authority", tls::optionsForClientTLS("localhost", *other), false},
      {"a vector without it", tls::optionsForClientTLS("localhost", std::vector{*other}), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.options.isOk()) << c.options.status().message();
    std::string got = whorlClient(*runtime_, port, c.options);
    if (c.verifies) {
      EXPECT_NE(got.find("lrohw"), std::string::npos) << got << server->output();
    } else {
      EXPECT_EQ(got.rfind("connect failed: ", 0), 0u) << got;
      EXPECT_NE(got.find("certificate verify failed: unknown authority"), std::string::npos) << got;
    }
  }
}

// --- hostile and broken clients; the server keeps serving ---

class HostileClientTest : public TlsLoopbackTest {
 protected:
  uint16_t port_ = 0;
  void SetUp() override {
    TlsLoopbackTest::SetUp();
    auto o = serverOptions();
    o.handshakeTimeout = 500ms;
    port_ = listen(o);
  }
  void expectStillServing() {
    EXPECT_NE(sClientEcho(port_, {}, "still serving").find("still serving"), std::string::npos);
  }
};

TEST_F(HostileClientTest, GarbageInsteadOfClientHello) {
  int fd = testutil::connectTo(port_);
  testutil::sendAll(fd, std::string(300, '\x17') + "garbage");
  int err = -2;
  testutil::recvUntilEof(fd, &err, 10000);
  EXPECT_NE(err, -1) << "the server did not close the connection";
  close(fd);
  EXPECT_TRUE(journal_.waitForLoss("TLS handshake failed")) << journal_.lossesText();
  expectStillServing();
}

TEST_F(HostileClientTest, PlainHttpToTheTlsPort) {
  int fd = testutil::connectTo(port_);
  testutil::sendAll(fd, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  int err = -2;
  testutil::recvUntilEof(fd, &err, 10000);
  EXPECT_NE(err, -1);
  close(fd);
  EXPECT_TRUE(journal_.waitForLoss("does not speak TLS")) << journal_.lossesText();
  expectStillServing();
}

TEST_F(HostileClientTest, StalledHandshakeTimesOut) {
  int fd = testutil::connectTo(port_);
  // A record header promising 512 bytes of handshake, then silence.
  testutil::sendAll(fd, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9));
  auto t0 = std::chrono::steady_clock::now();
  int err = -2;
  testutil::recvUntilEof(fd, &err, 10000);
  EXPECT_NE(err, -1) << "the stalled handshake was never closed";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 400ms);
  close(fd);
  EXPECT_TRUE(journal_.waitForLoss("TLS handshake timed out after 500 ms")) << journal_.lossesText();
  expectStillServing();
}

TEST_F(HostileClientTest, ClientOfferingOnlyTls10IsRefused) {
  Subprocess p({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_), "-tls1",
                "-cipher", "DEFAULT@SECLEVEL=0"});
  p.closeStdin();
  int rc = p.wait(10s);
  EXPECT_NE(rc, 0) << p.output();
  EXPECT_TRUE(journal_.waitForLoss("unsupported protocol")) << journal_.lossesText();
  expectStillServing();
}


// --- kernel TLS on a kernel without it (the development machines): auto falls back, require
// fails clearly. The kTLS path itself is tested inside VMs (tools/ktls-vm).

class ModeEcho : public RecordingEcho {
 public:
  using RecordingEcho::RecordingEcho;
  void handshakeCompleted() override {
    RecordingEcho::handshakeCompleted();
    transport()->write(std::string("mode=") + api::toString(transport()->tlsMode()) + "\n");
  }
};

TEST_F(TlsLoopbackTest, KernelTlsAutoFallsBackToUserspaceWhereTheKernelLacksIt) {
  if (whorl::kernelTlsSupport().isOk()) GTEST_SKIP() << "this kernel has kTLS; see the VM suite";
  auto o = serverOptions();
  o.ktls = tls::KtlsMode::kAuto;
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  auto port = endpoint::SSL4ServerEndpoint(*runtime_, 0, o, tcp)
                  .listen(api::Factory::forProtocol<ModeEcho>(&journal_));
  ASSERT_TRUE(port.isOk());
  uint64_t before = tls::tlsModeCounts().userspace;
  std::string out = sClientEcho((*port)->getHost().port(), {}, "fallback works");
  EXPECT_NE(out.find("mode=userspace"), std::string::npos) << out;
  EXPECT_NE(out.find("fallback works"), std::string::npos) << out;
  EXPECT_GT(tls::tlsModeCounts().userspace, before);
  EXPECT_NE(whorl::kernelTlsSupport().message().find("TCP_ULP"), std::string::npos);
}

TEST_F(TlsLoopbackTest, KernelTlsRequireFailsClearlyWhereTheKernelLacksIt) {
  if (whorl::kernelTlsSupport().isOk()) GTEST_SKIP() << "this kernel has kTLS; see the VM suite";
  auto o = serverOptions();
  o.ktls = tls::KtlsMode::kRequire;
  uint16_t port = listen(o);
  std::string out = sClientEcho(port, {}, "must not be echoed");
  EXPECT_EQ(out.find("must not be echoed\n"), std::string::npos) << out;
  EXPECT_TRUE(journal_.waitForLoss("ktls=require: setsockopt TCP_ULP tls")) << journal_.lossesText();
  // The client side says the same when it requires kTLS.
  tls::ClientTLSExtras extras;
  extras.ktls = tls::KtlsMode::kRequire;
  auto options = tls::optionsForClientTLS("localhost", testCa(), {}, {}, extras);
  ASSERT_TRUE(options.isOk());
  uint16_t plain = listen(serverOptions());
  std::string got = whorlClient(*runtime_, plain, options);
  EXPECT_NE(got.find("ktls=require"), std::string::npos) << got;
}


class TlsFileSender : public api::Protocol {
 public:
  TlsFileSender(int fd, uint64_t size) : fd_(fd), size_(size) {}
  void handshakeCompleted() override {
    transport()->write("head:");
    transport()->sendFile(fd_, 0, size_, [](Status) {});
    transport()->write(":tail");
    transport()->loseConnection();
  }

 private:
  int fd_;
  uint64_t size_;
};

TEST_F(TlsLoopbackTest, SendFileOverUserspaceTlsReadsAndEncryptsInOrder) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/tls-sendfile.bin";
  std::string content = testutil::randomBytes(3 << 20, 77);
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  auto port = endpoint::SSL4ServerEndpoint(*runtime_, 0, serverOptions(), tcp)
                  .listen(api::Factory::forProtocol<TlsFileSender>(fd, uint64_t{content.size()}));
  ASSERT_TRUE(port.isOk());
  const char* script = R"PY(
import hashlib, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as s:
    data = b""
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        data += b
print(len(data), data[:5].decode(), data[-5:].decode(), hashlib.sha256(data[5:-5]).hexdigest())
)PY";
  testutil::Subprocess p({"python3", "-c", script, std::to_string((*port)->getHost().port()), cert("test/ca.pem")});
  EXPECT_EQ(p.wait(60s), 0) << p.output();
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(content.data(), content.size(), md, &n, EVP_sha256(), nullptr);
  char hex[65];
  for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
  EXPECT_NE(p.output().find(std::to_string(content.size() + 10) + " head: :tail " + hex), std::string::npos)
      << p.output();
  close(fd);
}

}  // namespace
}  // namespace whorl
