// Loopback tests of a connection's life around the runtime's stop and idle timeouts: the stop
// notice (Protocol/Factory::stopRequested) with its deadline on accepted TCP, TLS and outgoing
// connections, a goodbye written in it reaching a raw-socket or Python ssl client before the
// close, and TimeoutMixin closing idle TCP and TLS connections while active ones stay.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "framework/api/protocol.h"
#include "framework/api/timeout_mixin.h"
#include "framework/base/address.h"
#include "framework/endpoint/description.h"
#include "framework/endpoint/endpoint.h"
#include "framework/reactor/runtime.h"
#include "tests/socket_util.h"
#include "tests/subprocess.h"

namespace whorl {
namespace {

using namespace std::chrono_literals;
using Clock = api::Reactor::Clock;
using testutil::Subprocess;

std::string cert(const std::string& name) {
  return std::string(std::getenv("TEST_SRCDIR")) + "/whorl/certs/" + name;
}

// What the server's protocols and factories saw, for the test thread.
struct Journal {
  std::mutex mu;
  std::condition_variable cv;
  int made = 0;
  std::vector<Clock::time_point> protocolNotices;
  std::vector<Clock::time_point> factoryNotices;
  std::set<int> factoryShards;  // the shard each factory notice came from
  std::vector<Status> losses;
  int timedOut = 0;  // connections lost after their TimeoutMixin expired

  template <typename F>
  void update(F f) {
    std::lock_guard<std::mutex> l(mu);
    f();
    cv.notify_all();
  }
  template <typename Pred>
  bool waitFor(Pred pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, timeout, pred);
  }
};

// Echoes; on the stop notice, says goodbye and closes (or, with goodbye = false, goes on).
class Goodbye : public api::Protocol {
 public:
  Goodbye(Journal* j, bool goodbye) : j_(j), goodbye_(goodbye) {}
  void connectionMade() override {
    j_->update([&] { ++j_->made; });
  }
  void dataReceived(std::string_view data) override { transport()->write(data); }
  void stopRequested(Clock::time_point deadline) override {
    j_->update([&] { j_->protocolNotices.push_back(deadline); });
    if (!goodbye_) return;
    transport()->write("goodbye\n");
    transport()->loseConnection();
  }
  void connectionLost(const Status& reason) override {
    j_->update([&] { j_->losses.push_back(reason); });
  }

 private:
  Journal* j_;
  bool goodbye_;
};

class GoodbyeFactory : public api::Factory {
 public:
  GoodbyeFactory(Journal* j, bool goodbye) : j_(j), goodbye_(goodbye) {}
  std::unique_ptr<api::Protocol> buildProtocol(const Address&) override {
    return std::make_unique<Goodbye>(j_, goodbye_);
  }
  void stopRequested(Clock::time_point deadline) override {
    reactor::Shard* shard = reactor::Shard::current();
    j_->update([&] {
      j_->factoryNotices.push_back(deadline);
      j_->factoryShards.insert(shard != nullptr ? shard->index() : -1);
    });
  }

 private:
  Journal* j_;
  bool goodbye_;
};

reactor::RuntimeOptions twoShards() {
  reactor::RuntimeOptions o;
  o.shards = 2;
  o.pinThreads = false;
  return o;
}

std::unique_ptr<endpoint::ListeningPort> listenOn(reactor::Runtime& rt, const std::string& desc,
                                                  std::shared_ptr<api::Factory> factory) {
  auto server = endpoint::serverFromString(rt, desc);
  EXPECT_TRUE(server.isOk()) << server.status().message();
  if (!server.isOk()) return nullptr;
  auto port = (*server)->listen(std::move(factory));
  EXPECT_TRUE(port.isOk()) << port.status().message();
  return port.isOk() ? std::move(port.value()) : nullptr;
}

std::string sslDescription() {
  return "ssl:0:interface=127.0.0.1:privateKey=" + cert("test/localhost.pem") +
         ":extraCertChain=" + cert("test/intermediate.pem");
}

// Every notice's deadline lies `drain` after the stop call, give or take how long it took.
void expectDeadlines(const std::vector<Clock::time_point>& notices, Clock::time_point before,
                     Clock::time_point after, std::chrono::milliseconds drain) {
  for (auto d : notices) {
    EXPECT_GE(d, before + drain);
    EXPECT_LE(d, after + drain);
  }
}

TEST(StopNoticeTest, TcpGoodbyeReachesEveryClientBeforeTheClose) {
  reactor::Runtime rt(twoShards());
  ASSERT_TRUE(rt.start().isOk());
  Journal j;
  auto port = listenOn(rt, "tcp:0:interface=127.0.0.1", std::make_shared<GoodbyeFactory>(&j, true));
  ASSERT_TRUE(port);
  std::vector<int> fds;
  for (int i = 0; i < 6; ++i) {
    int fd = testutil::connectTo(port->getHost().port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(testutil::sendAll(fd, "hi"));
    ASSERT_EQ(testutil::recvExactly(fd, 2), "hi");  // its protocol exists
    fds.push_back(fd);
  }
  ASSERT_TRUE(j.waitFor([&] { return j.made == 6; }));
  auto before = Clock::now();
  rt.stop(30000ms);
  for (int fd : fds) {
    int err = -2;
    // Well within the 30 s drain: it is the goodbye's close, not the drain's.
    EXPECT_EQ(testutil::recvUntilEof(fd, &err, 10000), "goodbye\n");
    EXPECT_EQ(err, 0) << "not a clean EOF";
    close(fd);
  }
  auto after = Clock::now();
  rt.join();  // the drain ends once the last connection is gone
  EXPECT_LT(Clock::now() - before, 20s);
  ASSERT_EQ(j.protocolNotices.size(), 6u);
  expectDeadlines(j.protocolNotices, before, after, 30000ms);
  // One listening port, two shards: each shard's listener told the factory, on its own thread.
  ASSERT_EQ(j.factoryNotices.size(), 2u);
  EXPECT_EQ(j.factoryShards, (std::set<int>{0, 1}));
  expectDeadlines(j.factoryNotices, before, after, 30000ms);
  ASSERT_EQ(j.losses.size(), 6u);
  for (const auto& s : j.losses) EXPECT_TRUE(s.isCleanClose()) << s.message();
}

TEST(StopNoticeTest, AConnectionThatStaysIsServedUntilTheDeadline) {
  reactor::Runtime rt(twoShards());
  ASSERT_TRUE(rt.start().isOk());
  Journal j;
  auto port =
      listenOn(rt, "tcp:0:interface=127.0.0.1", std::make_shared<GoodbyeFactory>(&j, false));
  ASSERT_TRUE(port);
  int fd = testutil::connectTo(port->getHost().port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testutil::sendAll(fd, "a"));
  ASSERT_EQ(testutil::recvExactly(fd, 1), "a");
  auto before = Clock::now();
  rt.stop(1500ms);
  ASSERT_TRUE(j.waitFor([&] { return j.protocolNotices.size() == 1; }));
  auto after = Clock::now();
  // Told, and still served.
  ASSERT_TRUE(testutil::sendAll(fd, "b"));
  EXPECT_EQ(testutil::recvExactly(fd, 1), "b");
  int err = -2;
  EXPECT_EQ(testutil::recvUntilEof(fd, &err, 10000), "");
  EXPECT_EQ(err, 0);
  auto closedAt = Clock::now();
  close(fd);
  rt.join();
  expectDeadlines(j.protocolNotices, before, after, 1500ms);
  // The drain closed it at the deadline it announced, not before.
  EXPECT_GE(closedAt, j.protocolNotices[0]);
}

TEST(StopNoticeTest, OutgoingConnectionsAreToldToo) {
  reactor::Runtime rt(twoShards());
  ASSERT_TRUE(rt.start().isOk());
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Address any = Address::loopbackIPv4(0);
  ASSERT_EQ(bind(lfd, any.addr(), any.length()), 0);
  ASSERT_EQ(listen(lfd, 4), 0);
  uint16_t peerPort = Address::fromSocketName(lfd).port();
  Journal j;
  std::promise<Status> connected;
  endpoint::TCP4ClientEndpoint client(rt.shard(1), "127.0.0.1", peerPort);
  client.connect(std::make_shared<GoodbyeFactory>(&j, true),
                 [&](Result<api::Protocol*> r) { connected.set_value(r.status()); });
  int fd = accept(lfd, nullptr, nullptr);
  ASSERT_GE(fd, 0);
  Status s = connected.get_future().get();
  ASSERT_TRUE(s.isOk()) << s.message();
  auto before = Clock::now();
  rt.stop(30000ms);
  int err = -2;
  EXPECT_EQ(testutil::recvUntilEof(fd, &err, 10000), "goodbye\n");
  EXPECT_EQ(err, 0);
  auto after = Clock::now();
  close(fd);
  close(lfd);
  rt.join();
  ASSERT_EQ(j.protocolNotices.size(), 1u);
  expectDeadlines(j.protocolNotices, before, after, 30000ms);
  EXPECT_TRUE(j.factoryNotices.empty()) << "a connecting factory has no listener to stop";
}

// A Python ssl client: connects, sends a line, prints "ready" once it is echoed, then prints
// everything until the server closes and whether the close came with a TLS close_notify.
const char* kPythonUntilClose = R"PY(
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
raw = socket.create_connection(("127.0.0.1", port))
s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
s.sendall(b"ping\n")
got = b""
while len(got) < 5:
    got += s.recv(100)
print("ready", flush=True)
data = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    print("eof: close_notify")
except ssl.SSLEOFError:
    print("eof: no close_notify")
print("got:", repr(data), flush=True)
)PY";

TEST(StopNoticeTest, TlsGoodbyeReachesAPythonClientBeforeTheClose) {
  reactor::Runtime rt(twoShards());
  ASSERT_TRUE(rt.start().isOk());
  Journal j;
  // The TLS layer wraps this factory (and passes the notice on) and is what the transport sees.
  auto port = listenOn(rt, sslDescription(), std::make_shared<GoodbyeFactory>(&j, true));
  ASSERT_TRUE(port);
  Subprocess py({"python3", "-c", kPythonUntilClose, std::to_string(port->getHost().port()),
                 cert("test/ca.pem")});
  std::string out = py.readStdoutUntil("ready", 20s);
  ASSERT_NE(out.find("ready"), std::string::npos) << out;
  auto before = Clock::now();
  rt.stop(30000ms);
  EXPECT_EQ(py.wait(10s), 0) << py.output();
  auto after = Clock::now();
  EXPECT_NE(py.output().find("eof: close_notify"), std::string::npos) << py.output();
  EXPECT_NE(py.output().find("got: b'goodbye\\n'"), std::string::npos) << py.output();
  rt.join();
  ASSERT_EQ(j.protocolNotices.size(), 1u);
  expectDeadlines(j.protocolNotices, before, after, 30000ms);
  ASSERT_EQ(j.factoryNotices.size(), 2u);
  EXPECT_EQ(j.factoryShards, (std::set<int>{0, 1}));
  ASSERT_EQ(j.losses.size(), 1u);
  EXPECT_TRUE(j.losses[0].isCleanClose()) << j.losses[0].message();
}

// --- TimeoutMixin on real connections ---

class IdleEcho : public api::TimeoutMixin<> {
 public:
  IdleEcho(Journal* j, std::chrono::milliseconds period) : j_(j), period_(period) {}
  void connectionMade() override {
    setTimeout(period_);
    j_->update([&] { ++j_->made; });
  }
  void dataReceived(std::string_view data) override {
    resetTimeout();
    transport()->write(data);
  }
  void connectionLost(const Status& reason) override {
    TimeoutMixin::connectionLost(reason);
    bool expired = timedOut();
    j_->update([&] {
      j_->losses.push_back(reason);
      if (expired) ++j_->timedOut;
    });
  }

 private:
  Journal* j_;
  std::chrono::milliseconds period_;
};

TEST(TimeoutMixinLoopbackTest, ClosesTheSilentTcpClientAndKeepsTheActiveOne) {
  reactor::Runtime rt(twoShards());
  ASSERT_TRUE(rt.start().isOk());
  Journal j;
  auto port = listenOn(rt, "tcp:0:interface=127.0.0.1",
                       api::Factory::forProtocol<IdleEcho>(&j, std::chrono::milliseconds(1000)));
  ASSERT_TRUE(port);
  int silent = testutil::connectTo(port->getHost().port());
  int active = testutil::connectTo(port->getHost().port());
  ASSERT_GE(silent, 0);
  ASSERT_GE(active, 0);
  auto t0 = Clock::now();
  // The active client sends every 150 ms for 2 s, twice the period.
  while (Clock::now() - t0 < 2s) {
    ASSERT_TRUE(testutil::sendAll(active, "tick"));
    ASSERT_EQ(testutil::recvExactly(active, 4), "tick") << "the active client was closed";
    std::this_thread::sleep_for(150ms);
  }
  int err = -2;
  EXPECT_EQ(testutil::recvUntilEof(silent, &err, 5000), "");
  EXPECT_EQ(err, 0);
  ASSERT_TRUE(j.waitFor([&] { return j.timedOut == 1; }));
  // Silent from here on: it goes too, a period later.
  EXPECT_EQ(testutil::recvUntilEof(active, &err, 5000), "");
  EXPECT_EQ(err, 0);
  ASSERT_TRUE(j.waitFor([&] { return j.timedOut == 2; }));
  close(silent);
  close(active);
  rt.stop(0ms);
  rt.join();
  for (const auto& s : j.losses) EXPECT_TRUE(s.isCleanClose()) << s.message();
}

TEST(TimeoutMixinLoopbackTest, ClosesAnIdleTlsClientWithCloseNotify) {
  reactor::Runtime rt(twoShards());
  ASSERT_TRUE(rt.start().isOk());
  Journal j;
  auto port = listenOn(rt, sslDescription(),
                       api::Factory::forProtocol<IdleEcho>(&j, std::chrono::milliseconds(500)));
  ASSERT_TRUE(port);
  Subprocess py({"python3", "-c", kPythonUntilClose, std::to_string(port->getHost().port()),
                 cert("test/ca.pem")});
  EXPECT_EQ(py.wait(20s), 0) << py.output();
  EXPECT_NE(py.output().find("ready"), std::string::npos) << py.output();
  EXPECT_NE(py.output().find("eof: close_notify"), std::string::npos) << py.output();
  EXPECT_NE(py.output().find("got: b''"), std::string::npos) << py.output();
  ASSERT_TRUE(j.waitFor([&] { return j.timedOut == 1; }));
  rt.stop(0ms);
  rt.join();
}

}  // namespace
}  // namespace whorl
