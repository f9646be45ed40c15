// Policies (framework/api/policies.h): ProtocolWrapper passes every call through both ways;
// LimitTotalConnectionsFactory refuses beyond its limit (also under concurrent builds from
// several threads) and gives places back on connectionLost or destruction; TimeoutFactory closes
// after the idle and the total limits and names the limit in connectionLost. In memory with the
// fake transport and reactor, then once over real loopback sockets.
#include "framework/api/policies.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "framework/api/lower_transport.h"
#include "framework/endpoint/endpoint.h"
#include "framework/reactor/runtime.h"
#include "tests/fake_transport.h"
#include "tests/socket_util.h"

namespace whorl::api {
namespace {

using namespace std::chrono_literals;
using test::FakeReactor;
using test::FakeTransport;

// Records what reaches it and echoes.
struct Seen {
  std::string received;
  int made = 0;
  int lost = 0;
  int pauses = 0;
  int resumes = 0;
  Status reason;
};

class Recorder : public Protocol {
 public:
  explicit Recorder(Seen* seen) : seen_(seen) {}
  void connectionMade() override { ++seen_->made; }
  void dataReceived(std::string_view data) override {
    seen_->received.append(data);
    transport()->write(data);
  }
  void connectionLost(const Status& reason) override {
    ++seen_->lost;
    seen_->reason = reason;
  }
  void pauseProducing() override {
    ++seen_->pauses;
    Protocol::pauseProducing();  // stops reading: reaches the real transport
  }
  void resumeProducing() override {
    ++seen_->resumes;
    Protocol::resumeProducing();
  }

 private:
  Seen* seen_;
};

// A wrapper that adds nothing: what ProtocolWrapper itself does.
class Plain final : public WrappingFactory {
 public:
  using WrappingFactory::WrappingFactory;

 protected:
  std::unique_ptr<Protocol> wrap(std::unique_ptr<Protocol> p) override {
    return std::make_unique<ProtocolWrapper>(std::move(p));
  }
};

class PoliciesTest : public ::testing::Test {
 protected:
  FakeReactor reactor_;
  FakeTransport transport_{reactor_};
  Seen seen_;
  std::shared_ptr<Factory> inner_ = Factory::forProtocol<Recorder>(&seen_);
};

TEST_F(PoliciesTest, WrapperPassesEverythingThroughBothWays) {
  Plain factory(inner_);
  auto p = factory.build(transport_.getPeer());
  ASSERT_TRUE(p);
  transport_.connect(p.get());
  auto& wrapper = static_cast<ProtocolWrapper&>(*p);
  Protocol& inner = wrapper.wrapped();
  EXPECT_EQ(seen_.made, 1);
  ASSERT_NE(inner.transport(), nullptr);
  EXPECT_NE(inner.transport(), &transport_);  // the wrapper stands in between
  EXPECT_EQ(inner.factory(), inner_.get());
  EXPECT_EQ(inner.transport()->getPeer().toString(), transport_.getPeer().toString());
  EXPECT_EQ(&inner.transport()->reactor(), &reactor_);
  ProtocolHandle<> handle(&inner);

  p->dataReceived("hello");
  EXPECT_EQ(seen_.received, "hello");
  EXPECT_EQ(transport_.written(), "hello");
  p->pauseProducing();  // flow control from the transport reaches the inner protocol...
  EXPECT_EQ(seen_.pauses, 1);
  EXPECT_EQ(transport_.pauseCalls(), 1);  // ...whose default stops reading the real one
  p->resumeProducing();
  EXPECT_EQ(seen_.resumes, 1);
  EXPECT_EQ(transport_.resumeCalls(), 1);
  inner.transport()->loseConnection();
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_TRUE(inner.transport()->disconnecting());
  p->deliverConnectionLost(Status::connectionDone());
  EXPECT_EQ(seen_.lost, 1);
  EXPECT_TRUE(seen_.reason.isCleanClose());
  EXPECT_TRUE(handle.lost());  // the inner protocol's handles learn it too
}

TEST_F(PoliciesTest, WrappedFactoryRefusalStaysARefusal) {
  class Refuser : public Factory {
    std::unique_ptr<Protocol> buildProtocol(const Address&) override { return nullptr; }
  };
  auto limited = std::make_shared<LimitTotalConnectionsFactory>(std::make_shared<Refuser>(), 1);
  EXPECT_EQ(limited->build(transport_.getPeer()), nullptr);
  EXPECT_EQ(limited->connectionCount(), 0u);  // the place taken for it was given back
  EXPECT_EQ(limited->refusedCount(), 0u);     // not refused by the limit
}

TEST_F(PoliciesTest, LimitRefusesBeyondItAndFreesPlacesOnConnectionLost) {
  auto limited = std::make_shared<LimitTotalConnectionsFactory>(inner_, 2);
  EXPECT_EQ(limited->limit(), 2u);
  auto a = limited->build(transport_.getPeer());
  auto b = limited->build(transport_.getPeer());
  ASSERT_TRUE(a && b);
  EXPECT_EQ(limited->connectionCount(), 2u);
  EXPECT_EQ(limited->build(transport_.getPeer()), nullptr);
  EXPECT_EQ(limited->build(transport_.getPeer()), nullptr);
  EXPECT_EQ(limited->refusedCount(), 2u);
  EXPECT_EQ(limited->connectionCount(), 2u);

  FakeTransport ta(reactor_);
  ta.connect(a.get());
  a->deliverConnectionLost(Status::connectionDone());
  EXPECT_EQ(limited->connectionCount(), 1u);  // given back at connectionLost, not destruction
  EXPECT_EQ(seen_.lost, 1);
  auto c = limited->build(transport_.getPeer());
  ASSERT_TRUE(c);
  EXPECT_EQ(limited->connectionCount(), 2u);
  a.reset();  // no second release
  EXPECT_EQ(limited->connectionCount(), 2u);
  b.reset();  // never connected: the destructor gives its place back
  EXPECT_EQ(limited->connectionCount(), 1u);
  // The factory may go first (a stopped listener); its connections still end cleanly.
  limited.reset();
  FakeTransport tc(reactor_);
  tc.connect(c.get());
  c->deliverConnectionLost(Status::connectionDone());
  c.reset();
}

TEST_F(PoliciesTest, LimitHoldsUnderConcurrentBuildsFromManyThreads) {
  auto limited = std::make_shared<LimitTotalConnectionsFactory>(inner_, 150);
  std::vector<std::vector<std::unique_ptr<Protocol>>> built(4);
  std::vector<std::thread> threads;
  for (auto& mine : built) {
    threads.emplace_back([&limited, &mine] {
      for (int i = 0; i < 100; ++i) {
        auto p = limited->build(Address::loopbackIPv4(1));
        if (p) mine.push_back(std::move(p));
      }
    });
  }
  for (auto& t : threads) t.join();
  size_t total = 0;
  for (auto& mine : built) total += mine.size();
  EXPECT_EQ(total, 150u);
  EXPECT_EQ(limited->connectionCount(), 150u);
  EXPECT_EQ(limited->refusedCount(), 250u);
  built.clear();
  EXPECT_EQ(limited->connectionCount(), 0u);
}

TEST_F(PoliciesTest, IdleLimitClosesAndNamesItself) {
  TimeoutFactory factory(inner_, {.idle = 10s});
  auto p = factory.build(transport_.getPeer());
  transport_.connect(p.get());
  reactor_.advance(6s);
  p->dataReceived("x");  // activity: 10 s from here
  reactor_.advance(9999ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  reactor_.advance(1ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);  // flushes what was written, then closes
  EXPECT_EQ(transport_.abortConnectionCalls(), 0);
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  p->deliverConnectionLost(Status::connectionDone());
  EXPECT_EQ(seen_.lost, 1);
  EXPECT_EQ(seen_.reason.code(), Status::Code::kTimeout);
  EXPECT_EQ(seen_.reason.message(), "idle timeout: no data received for 10 s");
}

TEST_F(PoliciesTest, TotalLimitClosesATricklingPeer) {
  TimeoutFactory factory(inner_, {.idle = 2s, .total = 5s});
  auto p = factory.build(transport_.getPeer());
  transport_.connect(p.get());
  for (int i = 0; i < 4; ++i) {
    reactor_.advance(1s);
    p->dataReceived("x");  // never idle for 2 s
  }
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  reactor_.advance(999ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  reactor_.advance(1ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_EQ(reactor_.pendingTimers(), 0u);  // the idle timer went with it
  p->deliverConnectionLost(Status::connectionDone());
  EXPECT_EQ(seen_.reason.code(), Status::Code::kTimeout);
  EXPECT_EQ(seen_.reason.message(), "connection time limit: still open after 5 s");
}

TEST_F(PoliciesTest, AFailureAfterTheTimeoutKeepsItsOwnReason) {
  TimeoutFactory factory(inner_, {.total = 1s});
  auto p = factory.build(transport_.getPeer());
  transport_.connect(p.get());
  reactor_.advance(1s);
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  // The close waited for a peer that never read: the transport's send timeout ended it.
  Status sendTimeout(Status::Code::kTimeout, "send timeout: the peer accepted no data for 60 s");
  p->deliverConnectionLost(sendTimeout);
  EXPECT_EQ(seen_.reason.message(), sendTimeout.message());
}

TEST_F(PoliciesTest, ClosedOrGoneProtocolsLeaveNoTimers) {
  TimeoutFactory factory(inner_, {.idle = 1s, .total = 2s});
  {
    auto p = factory.build(transport_.getPeer());
    transport_.connect(p.get());
    EXPECT_EQ(reactor_.pendingTimers(), 2u);
    p->deliverConnectionLost(Status::connectionDone());
    EXPECT_EQ(reactor_.pendingTimers(), 0u);
    EXPECT_TRUE(seen_.reason.isCleanClose());  // no limit ended it: the reason is untouched
  }
  {
    FakeTransport t(reactor_);
    auto p = factory.build(t.getPeer());
    t.connect(p.get());
  }
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  reactor_.advance(10s);  // nothing runs on a destroyed protocol (ASan would say)
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
}

// Over real sockets: the limit refuses at once, the total limit closes a silent client, and the
// wrapped protocol still reaches the TCP transport's layer side (what a TLS layer needs).
struct LoopbackSeen {
  std::atomic<int> lowerFound{0};
  std::atomic<int> lost{0};
  std::promise<Status> firstLost;
};

class LoopbackEcho : public Protocol {
 public:
  explicit LoopbackEcho(LoopbackSeen* seen) : seen_(seen) {}
  void connectionMade() override {
    if (lowerTransportOf(*transport()) != nullptr) ++seen_->lowerFound;
  }
  void dataReceived(std::string_view data) override { transport()->write(data); }
  void connectionLost(const Status& reason) override {
    if (seen_->lost.fetch_add(1) == 0) seen_->firstLost.set_value(reason);
  }

 private:
  LoopbackSeen* seen_;
};

TEST(PoliciesLoopbackTest, LimitAndTimeoutOverTcp) {
  reactor::RuntimeOptions ro;
  ro.shards = 2;
  ro.pinThreads = false;
  reactor::Runtime rt(ro);
  ASSERT_TRUE(rt.start().isOk());
  LoopbackSeen seen;
  auto timed = std::make_shared<TimeoutFactory>(Factory::forProtocol<LoopbackEcho>(&seen),
                                                TimeoutOptions{.total = 500ms});
  auto limited = std::make_shared<LimitTotalConnectionsFactory>(timed, 2);
  endpoint::TcpServerOptions so;
  so.interface = "127.0.0.1";
  auto port = endpoint::TCP4ServerEndpoint(rt, 0, so).listen(limited);
  ASSERT_TRUE(port.isOk()) << port.status().message();
  uint16_t portNumber = (*port)->getHost().port();

  auto start = std::chrono::steady_clock::now();
  int a = testutil::connectTo(portNumber);
  int b = testutil::connectTo(portNumber);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  testutil::sendAll(a, "a");
  testutil::sendAll(b, "b");
  ASSERT_EQ(testutil::recvExactly(a, 1), "a");  // both served: both hold a place
  ASSERT_EQ(testutil::recvExactly(b, 1), "b");
  int c = testutil::connectTo(portNumber);
  ASSERT_GE(c, 0);
  EXPECT_EQ(testutil::recvExactly(c, 1, 10000), "") << "the third was not closed at once";
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms + 10s);
  close(c);
  EXPECT_EQ(limited->refusedCount(), 1u);
  EXPECT_EQ(seen.lowerFound.load(), 2);

  // a and b say nothing more: the total limit closes them (EOF after their echo).
  EXPECT_EQ(testutil::recvExactly(a, 1, 20000), "");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_EQ(testutil::recvExactly(b, 1, 20000), "");
  auto lost = seen.firstLost.get_future();
  ASSERT_EQ(lost.wait_for(20s), std::future_status::ready);
  Status reason = lost.get();
  EXPECT_EQ(reason.code(), Status::Code::kTimeout) << reason.toString();
  EXPECT_EQ(reason.message(), "connection time limit: still open after 0.5 s");
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (limited->connectionCount() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(limited->connectionCount(), 0u);
  // Places are free again.
  int d = testutil::connectTo(portNumber);
  ASSERT_GE(d, 0);
  testutil::sendAll(d, "d");
  EXPECT_EQ(testutil::recvExactly(d, 1), "d");
  close(a);
  close(b);
  close(d);
  rt.stop(0ms);
  rt.join();
}

}  // namespace
}  // namespace whorl::api
