// TimeoutMixin over the in-memory transport and the manual reactor: it expires after the period
// without activity, resetTimeout() postpones it without creating timers, setTimeout(0) turns it
// off, setTimeout() returns the previous period, and no callback runs once the connection is lost
// or the protocol is gone (run under ASan). The real path (TCP and TLS sockets) is in
// lifecycle_test.cc.
#include "framework/api/timeout_mixin.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "framework/api/line_receiver.h"
#include "framework/base/log.h"
#include "tests/fake_transport.h"

namespace whorl::api {
namespace {

using namespace std::chrono_literals;
using test::FakeReactor;
using test::FakeTransport;

// Marks every read as activity and echoes it.
class Idle : public TimeoutMixin<> {
 public:
  explicit Idle(Reactor::Clock::duration period) : period_(period) {}
  void connectionMade() override { setTimeout(period_); }
  void dataReceived(std::string_view data) override {
    resetTimeout();
    transport()->write(data);
  }
  void connectionLost(const Status& reason) override {
    ++lost;
    TimeoutMixin::connectionLost(reason);
  }
  int lost = 0;

 private:
  Reactor::Clock::duration period_;
};

class TimeoutMixinTest : public ::testing::Test {
 protected:
  FakeReactor reactor_;
  FakeTransport transport_{reactor_};
};

TEST_F(TimeoutMixinTest, ExpiresAfterThePeriodWithoutActivity) {
  Idle p(10s);
  transport_.connect(&p);
  EXPECT_EQ(p.timeout(), 10s);
  reactor_.advance(9999ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  EXPECT_FALSE(p.timedOut());
  reactor_.advance(1ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_EQ(transport_.abortConnectionCalls(), 0);
  EXPECT_TRUE(p.timedOut());
  // Expired once: nothing more is scheduled.
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  p.connectionLost(Status::connectionDone());
  EXPECT_TRUE(p.timedOut());  // connectionLost can still name the cause
}

TEST_F(TimeoutMixinTest, ResetTimeoutPostponesItWithoutCreatingTimers) {
  Idle p(10s);
  transport_.connect(&p);
  ASSERT_EQ(reactor_.pendingTimers(), 1u);
  reactor_.advance(6s);
  for (int i = 0; i < 1000; ++i) p.dataReceived("x");  // activity at t=6 s
  EXPECT_EQ(reactor_.pendingTimers(), 1u);
  reactor_.advance(4s);  // t=10 s: the timer fires early and waits for the 6 s left
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  EXPECT_EQ(reactor_.pendingTimers(), 1u);
  reactor_.advance(5999ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  reactor_.advance(1ms);  // t=16 s: 10 s after the last activity
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_TRUE(p.timedOut());
}

TEST_F(TimeoutMixinTest, ResetTimeoutAfterExpiryDoesNothing) {
  Idle p(1s);
  transport_.connect(&p);
  reactor_.advance(1s);
  ASSERT_TRUE(p.timedOut());
  p.resetTimeout();
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  EXPECT_TRUE(p.timedOut());
}

TEST_F(TimeoutMixinTest, SetTimeoutZeroTurnsItOffAndReturnsThePreviousPeriod) {
  Idle p(10s);
  transport_.connect(&p);
  EXPECT_EQ(p.setTimeout(0s), 10s);
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  p.dataReceived("x");  // resetTimeout() without a timeout: nothing to do
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  reactor_.advance(24h);
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  EXPECT_EQ(p.setTimeout(2s), 0s);
  EXPECT_EQ(p.setTimeout(3s), 2s);  // counts 3 s from now
  EXPECT_EQ(reactor_.pendingTimers(), 1u);
  reactor_.advance(2999ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  reactor_.advance(1ms);
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_EQ(p.setTimeout(-1s), 3s);  // negative: off, like zero
  EXPECT_EQ(p.timeout(), 0s);
  EXPECT_FALSE(p.timedOut());
}

TEST_F(TimeoutMixinTest, NoCallbackAfterConnectionLost) {
  auto p = std::make_unique<Idle>(1s);
  transport_.connect(p.get());
  reactor_.advance(500ms);
  p->connectionLost(Status::connectionDone());
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  p.reset();  // destroyed right after connectionLost, as transports do
  reactor_.advance(10s);
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
}

// A subclass whose connectionLost does not call the mixin's: the destructor still cancels.
class Forgetful : public TimeoutMixin<> {
 public:
  void connectionMade() override { setTimeout(1s); }
  void connectionLost(const Status&) override {}
};

TEST_F(TimeoutMixinTest, TheDestructorCancelsTheTimer) {
  auto p = std::make_unique<Forgetful>();
  transport_.connect(p.get());
  p->connectionLost(Status::connectionDone());
  p.reset();
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  reactor_.advance(10s);  // ASan: a callback here would use the freed protocol
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
}

TEST_F(TimeoutMixinTest, SetBeforeTheConnectionStartsAtTheFirstResetTimeout) {
  class Early : public TimeoutMixin<> {
   public:
    Early() { setTimeout(5s); }  // no transport yet: only the period is kept
  };
  Early p;
  transport_.connect(&p);
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  reactor_.advance(1h);
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  p.resetTimeout();  // the first activity starts the count
  EXPECT_EQ(reactor_.pendingTimers(), 1u);
  reactor_.advance(5s);
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
}

// Logs at info level for the duration of a test (tests run at warning level).
class InfoLogs {
 public:
  InfoLogs() : saved_(log::level()) { log::setLevel(log::Level::kInfo); }
  ~InfoLogs() { log::setLevel(saved_); }

 private:
  log::Level saved_;
};

// timeoutConnection() overridden: warn once, then close at the second expiry.
class Warner : public TimeoutMixin<LineReceiver> {
 public:
  void connectionMade() override { setTimeout(2s); }
  void lineReceived(std::string_view line) override {
    resetTimeout();
    sendLine(line);
  }
  void timeoutConnection() override {
    if (warned_) {
      TimeoutMixin::timeoutConnection();
      return;
    }
    warned_ = true;
    sendLine("are you there?");
    setTimeout(1s);
  }

 private:
  bool warned_ = false;
};

TEST_F(TimeoutMixinTest, OverriddenTimeoutConnectionOverALineReceiver) {
  Warner p;
  transport_.connect(&p);
  reactor_.advance(1s);
  p.dataReceived("hello\r\n");
  reactor_.advance(1999ms);
  EXPECT_EQ(transport_.written(), "hello\r\n");
  reactor_.advance(1ms);  // 2 s after the line
  EXPECT_EQ(transport_.written(), "hello\r\nare you there?\r\n");
  EXPECT_FALSE(p.timedOut());  // setTimeout() in timeoutConnection() started a new count
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  InfoLogs info;
  testing::internal::CaptureStderr();
  reactor_.advance(1s);
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_TRUE(p.timedOut());
  // The default names the peer, the cause and the period.
  EXPECT_NE(log.find("closing connection from 127.0.0.1:40000: idle timeout, no activity for 1 s"),
            std::string::npos)
      << log;
}

TEST_F(TimeoutMixinTest, TheDefaultDoesNothingOnAConnectionAlreadyClosing) {
  Idle p(1s);
  transport_.connect(&p);
  transport_.loseConnection();
  InfoLogs info;
  testing::internal::CaptureStderr();
  reactor_.advance(1s);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);  // ours only
}

}  // namespace
}  // namespace whorl::api
