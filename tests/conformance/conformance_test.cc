// The transport conformance suite: the same behaviours, asserted over every kind of transport a
// protocol can be given: plain TCP, TLS, a TCP connection upgraded with startTLS, and (inside the
// kTLS VMs, where WHORL_KTLS_VM is set) kernel TLS and startTLS ending in kernel TLS. A protocol
// written against api::Transport must not be able to tell which one it got.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>

#include "framework/api/line_receiver.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/base/ktls_probe.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "tests/socket_util.h"

namespace whorl {
namespace {

using namespace std::chrono_literals;

enum class Kind { kTcp, kTls, kStartTls, kKernelTls, kStartTlsKernel };

std::string kindName(Kind k) {
  switch (k) {
    case Kind::kTcp: return "tcp";
    case Kind::kTls: return "tls";
    case Kind::kStartTls: return "starttls";
    case Kind::kKernelTls: return "ktls";
    case Kind::kStartTlsKernel: return "starttls_ktls";
  }
  return "?";
}

bool kernelKind(Kind k) { return k == Kind::kKernelTls || k == Kind::kStartTlsKernel; }

std::string cert(const std::string& name) {
  if (const char* d = std::getenv("WHORL_CERTS")) return std::string(d) + "/" + name;
  return std::string(std::getenv("TEST_SRCDIR")) + "/whorl/certs/" + name;
}

tls::KtlsMode ktlsFor(Kind k) { return kernelKind(k) ? tls::KtlsMode::kRequire : tls::KtlsMode::kOff; }

std::shared_ptr<tls::TlsContext> serverContext(Kind k) {
  auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
  auto o = pc->options();
  o.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
  o.ktls = ktlsFor(k);
  return *o.context();
}

tls::TLSOptions clientOptions(Kind k) {
  tls::ClientTLSExtras e;
  e.ktls = ktlsFor(k);
  return tls::optionsForClientTLS(
      "localhost", tls::trustRootFromCertificates({*tls::Certificate::loadPEMFile(cert("test/ca.pem"))}), {},
      {}, e);
}

// Runs the plain STARTTLS/READY exchange, then gives the connection to `inner` as if it had just
// been made: the protocol under test starts on an encrypted transport either way.
class StartTlsThen : public api::LineReceiver {
 public:
  StartTlsThen(std::unique_ptr<api::Protocol> inner, std::shared_ptr<const api::TlsUpgrade> tls,
               bool client)
      : inner_(std::move(inner)), tls_(std::move(tls)), client_(client) {}
  void connectionMade() override {
    if (client_) sendLine("STARTTLS");
  }
  void lineReceived(std::string_view line) override {
    if (!client_ && line == "STARTTLS") {
      sendLine("READY");
      if (!transport()->startTLS(tls_).isOk()) transport()->abortConnection();
    } else if (client_ && line == "READY") {
      if (!transport()->startTLS(tls_).isOk()) transport()->abortConnection();
    }
  }
  void handshakeCompleted() override {
    upgraded_ = true;
    inner_->makeConnection(transport());
    inner_->handshakeCompleted();
  }
  void dataReceived(std::string_view data) override {
    if (upgraded_) {
      inner_->dataReceived(data);
    } else {
      LineReceiver::dataReceived(data);
    }
  }
  void connectionLost(const Status& r) override {
    if (upgraded_) inner_->connectionLost(r);
  }
  void pauseProducing() override {
    if (upgraded_) inner_->pauseProducing();
  }
  void resumeProducing() override {
    if (upgraded_) inner_->resumeProducing();
  }

 private:
  std::unique_ptr<api::Protocol> inner_;
  std::shared_ptr<const api::TlsUpgrade> tls_;
  bool client_;
  bool upgraded_ = false;
};

class WrapFactory : public api::Factory {
 public:
  WrapFactory(std::shared_ptr<api::Factory> inner, std::shared_ptr<const api::TlsUpgrade> tls, bool client)
      : inner_(std::move(inner)), tls_(std::move(tls)), client_(client) {}
  std::unique_ptr<api::Protocol> buildProtocol(const Address& peer) override {
    return std::make_unique<StartTlsThen>(inner_->build(peer), tls_, client_);
  }

 private:
  std::shared_ptr<api::Factory> inner_;
  std::shared_ptr<const api::TlsUpgrade> tls_;
  bool client_;
};

// What a protocol under test reports back to the test thread.
struct Outcome {
  std::string data;
  Status lost;
  std::string mode;
};

class ConformanceTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (kernelKind(GetParam()) && !whorl::kernelTlsSupport().isOk()) {
      GTEST_SKIP() << "kernel TLS: " << whorl::kernelTlsSupport().message();
    }
    reactor::RuntimeOptions o;
    o.shards = 2;
    o.pinThreads = false;
    rt_ = std::make_unique<reactor::Runtime>(o);
    ASSERT_TRUE(rt_->start().isOk());
  }
  void TearDown() override {
    if (!rt_) return;
    rt_->stop(0ms);
    rt_->join();
  }
  uint16_t listen(std::shared_ptr<api::Factory> f) {
    Kind k = GetParam();
    endpoint::TcpServerOptions tcp;
    tcp.interface = "127.0.0.1";
    std::shared_ptr<api::Factory> server = f;
    if (k == Kind::kTls || k == Kind::kKernelTls) {
      server = std::make_shared<tls::TlsFactory>(serverContext(k), f);
    } else if (k == Kind::kStartTls || k == Kind::kStartTlsKernel) {
      server = std::make_shared<WrapFactory>(f, serverContext(k), false);
    }
    auto p = endpoint::TCP4ServerEndpoint(*rt_, 0, tcp).listen(server);
    EXPECT_TRUE(p.isOk()) << p.status().message();
    ports_.push_back(std::move(p.value()));
    return ports_.back()->getHost().port();
  }
  void connect(uint16_t port, std::shared_ptr<api::Factory> f) {
    Kind k = GetParam();
    std::shared_ptr<api::Factory> client = f;
    if (k == Kind::kTls || k == Kind::kKernelTls) {
      client = std::make_shared<tls::TlsFactory>(clientOptions(k).context(), f);
    } else if (k == Kind::kStartTls || k == Kind::kStartTlsKernel) {
      client = std::make_shared<WrapFactory>(f, clientOptions(k).context(), true);
    }
    endpoint::TCP4ClientEndpoint(rt_->shard(1), "127.0.0.1", port).connect(client, [](Result<api::Protocol*>) {});
  }

  // Data a server protocol reads on its shard, kept until after TearDown's join(). The test body
  // knows the server is done with it only because the client saw the result through the socket,
  // an ordering ThreadSanitizer cannot see; the join is one it can.
  const std::string& keep(std::string s) {
    kept_.push_back(std::make_unique<std::string>(std::move(s)));
    return *kept_.back();
  }

  std::vector<std::unique_ptr<std::string>> kept_;
  std::unique_ptr<reactor::Runtime> rt_;
  std::vector<std::unique_ptr<endpoint::ListeningPort>> ports_;
};

// Plain echo on the server side.
class Echo : public api::Protocol {
 public:
  void dataReceived(std::string_view d) override { transport()->write(d); }
};

// Client: on connect, writes a payload; collects the echo; closes when all is back.
class Sender : public api::Protocol {
 public:
  Sender(const std::string* payload, std::shared_ptr<std::promise<Outcome>> done) : payload_(payload), done_(std::move(done)) {}
  void connectionMade() override { transport()->write(*payload_); }
  void dataReceived(std::string_view d) override {
    if (out_.mode.empty()) out_.mode = api::toString(transport()->tlsMode());
    out_.data.append(d);
    if (out_.data.size() >= payload_->size()) transport()->loseConnection();
  }
  void pauseProducing() override {}  // the payload is written at once: keep reading
  void resumeProducing() override {}
  void connectionLost(const Status& r) override {
    out_.lost = r;
    done_->set_value(std::move(out_));
  }

 private:
  const std::string* payload_;
  std::shared_ptr<std::promise<Outcome>> done_;
  Outcome out_;
};

// Client: reads until the connection ends.
class Reader : public api::Protocol {
 public:
  explicit Reader(std::shared_ptr<std::promise<Outcome>> done) : done_(std::move(done)) {}
  void dataReceived(std::string_view d) override {
    if (out_.mode.empty()) out_.mode = api::toString(transport()->tlsMode());
    out_.data.append(d);
  }
  void connectionLost(const Status& r) override {
    out_.lost = r;
    done_->set_value(std::move(out_));
  }

 private:
  std::shared_ptr<std::promise<Outcome>> done_;
  Outcome out_;
};

// Server: writes a burst (or a file between two writes) and closes at once.
class Burst : public api::Protocol {
 public:
  Burst(const std::string* payload, int fd, uint64_t fileSize) : payload_(payload), fd_(fd), size_(fileSize) {}
  void connectionMade() override {
    transport()->write(*payload_);
    if (fd_ >= 0) transport()->sendFile(fd_, 0, size_, [](Status) {});
    transport()->write("<end>");
    transport()->loseConnection();
  }

 private:
  const std::string* payload_;
  int fd_;
  uint64_t size_;
};

Outcome wait(std::shared_ptr<std::promise<Outcome>> done) {
  auto f = done->get_future();
  if (f.wait_for(60s) != std::future_status::ready) return {"", Status(Status::Code::kTimeout, "no end"), ""};
  return f.get();
}

void expectMode(Kind k, const std::string& mode) {
  if (kernelKind(k)) {
    EXPECT_EQ(mode, "kernel TX+RX");
  } else if (k == Kind::kTcp) {
    EXPECT_EQ(mode, "");
  } else {
    EXPECT_EQ(mode, "userspace");
  }
}

TEST_P(ConformanceTest, EchoesFourMebibytesExactlyAndClosesCleanly) {
  std::string payload = testutil::randomBytes(4 << 20, 11);
  uint16_t port = listen(api::Factory::forProtocol<Echo>());
  auto done = std::make_shared<std::promise<Outcome>>();
  connect(port, api::Factory::forProtocol<Sender>(&payload, done));
  Outcome o = wait(done);
  EXPECT_TRUE(o.lost.isCleanClose()) << o.lost.toString();
  EXPECT_EQ(o.data.size(), payload.size());
  EXPECT_TRUE(o.data == payload);
  expectMode(GetParam(), o.mode);
}

TEST_P(ConformanceTest, LoseConnectionSendsEverythingWrittenFirst) {
  const std::string& payload = keep(testutil::randomBytes(1 << 20, 12));
  uint16_t port = listen(api::Factory::forProtocol<Burst>(&payload, -1, uint64_t{0}));
  auto done = std::make_shared<std::promise<Outcome>>();
  connect(port, api::Factory::forProtocol<Reader>(done));
  Outcome o = wait(done);
  EXPECT_TRUE(o.lost.isCleanClose()) << o.lost.toString();
  EXPECT_TRUE(o.data == payload + "<end>") << o.data.size();
}

TEST_P(ConformanceTest, SendFileKeepsItsPlaceBetweenWrites) {
  std::string file = testutil::randomBytes(2 << 20, 13);
  std::string path = std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") +
                     "/conformance-" + kindName(GetParam()) + ".bin";
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(file.data(), 1, file.size(), f);
  std::fclose(f);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::string& head = keep("head:");
  uint16_t port = listen(api::Factory::forProtocol<Burst>(&head, fd, uint64_t{file.size()}));
  auto done = std::make_shared<std::promise<Outcome>>();
  connect(port, api::Factory::forProtocol<Reader>(done));
  Outcome o = wait(done);
  EXPECT_TRUE(o.lost.isCleanClose()) << o.lost.toString();
  EXPECT_TRUE(o.data == head + file + "<end>") << o.data.size();
  close(fd);
}

INSTANTIATE_TEST_SUITE_P(Transports, ConformanceTest,
                         ::testing::Values(Kind::kTcp, Kind::kTls, Kind::kStartTls, Kind::kKernelTls,
                                           Kind::kStartTlsKernel),
                         [](const ::testing::TestParamInfo<Kind>& i) { return kindName(i.param); });

}  // namespace
}  // namespace whorl
