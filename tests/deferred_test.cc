// Deferred<T> and coroutines, deterministically on a FakeReactor: chains, recovery, Deferreds
// returned from callbacks, cancellation (with and without cancellers, through chains and into
// coroutines), timeouts, gatherResults, the unhandled-error log, and the misuse that aborts.
// Frame lifetimes are checked with a counter of live locals (and by ASan/LSan in CI).
#include "framework/api/deferred.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/fake_transport.h"

namespace whorl::api {
namespace {

using namespace std::chrono_literals;
using test::FakeReactor;

TEST(Deferred, CallbackChainTransformsTheValue) {
  Deferred<int> d;
  std::vector<std::string> seen;
  d.addCallback([&](int n) {
     seen.push_back("first " + std::to_string(n));
     return n * 2;
   })
      .addCallback([&](int n) { return std::to_string(n) + "!"; })
      .addCallback([&](std::string s) { seen.push_back(s); });
  EXPECT_TRUE(seen.empty());
  d.callback(21);
  EXPECT_EQ(seen, (std::vector<std::string>{"first 21", "42!"}));
  EXPECT_TRUE(d.called());
}

TEST(Deferred, CallbackAddedAfterFiringRunsAtOnce) {
  Deferred<int> d = succeed(5);
  int got = 0;
  d.addCallback([&](int n) { got = n; });
  EXPECT_EQ(got, 5);
}

TEST(Deferred, FailureSkipsCallbacksUntilAnErrbackRecovers) {
  Deferred<int> d;
  bool callbackRan = false;
  std::string reason;
  int final = 0;
  d.addCallback([&](int n) {
     callbackRan = true;
     return n;
   })
      .addErrback([&](const Status& why) {
        reason = why.message();
        return 7;  // recovered
      })
      .addCallback([&](int n) { final = n; });
  d.errback(Status(Status::Code::kRefused, "connection refused"));
  EXPECT_FALSE(callbackRan);
  EXPECT_EQ(reason, "connection refused");
  EXPECT_EQ(final, 7);
}

TEST(Deferred, ValuesSkipErrbacks) {
  Deferred<int> d;
  bool errbackRan = false;
  int got = 0;
  d.addErrback([&](const Status&) {
     errbackRan = true;
     return 0;
   })
      .addCallback([&](int n) { got = n; });
  d.callback(3);
  EXPECT_FALSE(errbackRan);
  EXPECT_EQ(got, 3);
}

TEST(Deferred, CallbackReturningResultOrStatusCanFail) {
  Deferred<int> d;
  Status last;
  d.addCallback([](int n) -> Result<int> {
     if (n < 0) return Status::invalidArgument("negative");
     return n;
   })
      .addCallback([](int) { return Status(Status::Code::kIo, "disk full"); })
      .addBoth([&](Status s) { last = s; });
  d.callback(1);
  EXPECT_EQ(last.message(), "disk full");

  Deferred<int> e;
  Status first;
  e.addCallback([](int n) -> Result<int> {
     if (n < 0) return Status::invalidArgument("negative");
     return n;
   })
      .addBoth([&](Result<int> r) { first = r.status(); });
  e.callback(-1);
  EXPECT_EQ(first.message(), "negative");
}

TEST(Deferred, CallbackReturningADeferredPausesTheChain) {
  Deferred<int> outer;
  Deferred<std::string> inner;
  std::string got;
  outer.addCallback([&](int n) { return inner.addCallback([n](std::string s) { return s + std::to_string(n); }); })
      .addCallback([&](std::string s) { got = s; });
  outer.callback(1);
  EXPECT_EQ(got, "");  // waiting on inner
  inner.callback("x");
  EXPECT_EQ(got, "x1");
}

TEST(Deferred, ErrbackReturningADeferredRecoversLater) {
  FakeReactor reactor;
  Deferred<int> d = fail<int>(Status(Status::Code::kTimeout, "slow"));
  int got = 0;
  d.addErrback([&](const Status&) { return deferLater(reactor, 1s, [] { return 9; }); })
      .addCallback([&](int n) { got = n; });
  EXPECT_EQ(got, 0);
  reactor.advance(1s);
  EXPECT_EQ(got, 9);
}

TEST(Deferred, VoidDeferreds) {
  Deferred<void> d;
  int steps = 0;
  d.addCallback([&] { ++steps; }).addCallback([&] {
    ++steps;
    return Status(Status::Code::kAborted, "stop");
  }).addErrback([&](const Status& s) {
    EXPECT_EQ(s.code(), Status::Code::kAborted);
    ++steps;
  });
  d.callback();
  EXPECT_EQ(steps, 3);
}

TEST(Deferred, MoveOnlyValuesAndCallbacks) {
  Deferred<std::unique_ptr<int>> d;
  auto bonus = std::make_unique<int>(1);
  int got = 0;
  d.addCallback([bonus = std::move(bonus)](std::unique_ptr<int> p) { return *p + *bonus; })
      .addCallback([&](int n) { got = n; });
  d.callback(std::make_unique<int>(41));
  EXPECT_EQ(got, 42);
}

TEST(Deferred, CancelRunsTheCancellerThenFailsWithCancelled) {
  int cancellerRuns = 0;
  Deferred<int> d([&] { ++cancellerRuns; });
  Status got;
  auto tail = d.addBoth([&](Result<int> r) { got = r.status(); });
  d.cancel();
  EXPECT_EQ(cancellerRuns, 1);
  EXPECT_EQ(got.code(), Status::Code::kCancelled);
  // The producer's result arriving after the cancel is dropped, once.
  d.callback(5);
  d.cancel();  // a fired Deferred: nothing happens
  EXPECT_EQ(cancellerRuns, 1);
}

TEST(Deferred, CancellerMayFireWithItsOwnResult) {
  Deferred<int> d;
  d.setCanceller([&d] { d.errback(Status(Status::Code::kAborted, "stopped by canceller")); });
  Status got;
  d.addBoth([&](Result<int> r) { got = r.status(); });
  d.cancel();
  EXPECT_EQ(got.message(), "stopped by canceller");
}

TEST(Deferred, CancellingTheEndOfAChainCancelsWhatItWaitsOn) {
  int cancelled = 0;
  Deferred<int> source([&] { ++cancelled; });
  Deferred<std::string> inner([&] { cancelled += 10; });
  Deferred<int> stage1 = source.addCallback([](int n) { return n; });
  Status got;
  Deferred<std::string> stage2 = stage1.addCallback([&](int) { return inner; });
  stage2.addBoth([&](Result<std::string> r) { got = r.status(); });
  // Before the source fires, cancelling the end reaches the source.
  stage2.cancel();
  EXPECT_EQ(cancelled, 1);
  EXPECT_EQ(got.code(), Status::Code::kCancelled);

  // Once the chain waits on a Deferred a callback returned, cancel reaches that one.
  cancelled = 0;
  Deferred<int> source2([&] { ++cancelled; });
  Deferred<std::string> inner2([&] { cancelled += 10; });
  Status got2;
  Deferred<std::string> end2 = source2.addCallback([&](int) { return inner2; });
  end2.addBoth([&](Result<std::string> r) { got2 = r.status(); });
  source2.callback(1);
  end2.cancel();
  EXPECT_EQ(cancelled, 10);
  EXPECT_EQ(got2.code(), Status::Code::kCancelled);
}

TEST(Deferred, TimeoutFailsWithATimeoutStatusAndCancelsTheWork) {
  FakeReactor reactor;
  int cancelled = 0;
  Deferred<int> work([&] { ++cancelled; });
  Status got;
  work.addTimeout(5s, reactor).addBoth([&](Result<int> r) { got = r.status(); });
  reactor.advance(4s);
  EXPECT_TRUE(got.isOk());
  EXPECT_EQ(cancelled, 0);
  reactor.advance(1s);
  EXPECT_EQ(cancelled, 1);
  EXPECT_EQ(got.code(), Status::Code::kTimeout);
  EXPECT_EQ(got.message(), "timed out after 5 s");
}

TEST(Deferred, TimeoutDoesNothingWhenTheResultComesFirst) {
  FakeReactor reactor;
  Deferred<int> work;
  int got = 0;
  work.addTimeout(250ms, reactor).addCallback([&](int n) { got = n; });
  work.callback(3);
  EXPECT_EQ(got, 3);
  EXPECT_EQ(reactor.pendingTimers(), 0u);  // the timer was cancelled with the result
}

TEST(Deferred, DeferLaterRunsAfterTheDelayAndCancels) {
  FakeReactor reactor;
  int got = 0;
  deferLater(reactor, 2s, [] { return 4; }).addCallback([&](int n) { got = n; });
  reactor.advance(1s);
  EXPECT_EQ(got, 0);
  reactor.advance(1s);
  EXPECT_EQ(got, 4);

  bool ran = false;
  Status why;
  auto d = deferLater(reactor, 2s, [&] { ran = true; });
  auto end = d.addErrback([&](const Status& s) { why = s; });
  d.cancel();
  EXPECT_EQ(reactor.pendingTimers(), 0u);
  reactor.advance(5s);
  EXPECT_FALSE(ran);
  EXPECT_EQ(why.code(), Status::Code::kCancelled);
}

TEST(Deferred, GatherResultsInOrderOrFirstFailure) {
  Deferred<int> a, b, c;
  std::vector<int> all;
  gatherResults<int>({a, b, c}).addCallback([&](std::vector<int> v) { all = v; });
  c.callback(3);
  a.callback(1);
  EXPECT_TRUE(all.empty());
  b.callback(2);
  EXPECT_EQ(all, (std::vector<int>{1, 2, 3}));

  Deferred<int> x, y;
  Status why;
  testing::internal::CaptureStderr();
  gatherResults<int>({x, y}).addErrback([&](const Status& s) {
    why = s;
    return std::vector<int>{};
  });
  x.errback(Status(Status::Code::kRefused, "x refused"));
  y.errback(Status(Status::Code::kRefused, "y refused"));  // consumed, not logged
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(why.message(), "x refused");
  EXPECT_EQ(log, "");

  std::vector<Deferred<void>> none;
  bool fired = false;
  gatherResults(std::move(none)).addCallback([&] { fired = true; });
  EXPECT_TRUE(fired);
}

TEST(Deferred, CancellingAGatherCancelsItsInputs) {
  int cancelled = 0;
  Deferred<void> a([&] { ++cancelled; }), b([&] { ++cancelled; });
  Status why;
  auto all = gatherResults<void>({a, b});
  all.addErrback([&](const Status& s) { why = s; });
  all.cancel();
  EXPECT_EQ(cancelled, 2);
  EXPECT_EQ(why.code(), Status::Code::kCancelled);
}

TEST(Deferred, UnhandledFailureIsLoggedWhenTheDeferredIsDestroyed) {
  testing::internal::CaptureStderr();
  {
    Deferred<int> d;
    d.addCallback([](int n) { return n; });  // the failure reaches the end of this chain
    d.errback(Status(Status::Code::kRefused, "nobody listens on 127.0.0.1:1"));
  }
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("Unhandled error in Deferred: refused: nobody listens on 127.0.0.1:1"),
            std::string::npos)
      << log;

  // Observed failures and cancellations are not logged.
  testing::internal::CaptureStderr();
  {
    Deferred<int> d;
    d.addErrback([](const Status&) { return 0; });
    d.errback(Status(Status::Code::kRefused, "handled"));
    Deferred<int> e;
    e.cancel();
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(DeferredDeathTest, MisuseAbortsWithAMessage) {
  EXPECT_DEATH(
      {
        Deferred<int> d;
        d.callback(1);
        d.callback(2);
      },
      "fired twice");
  EXPECT_DEATH(
      {
        Deferred<int> d;
        d.addCallback([](int) {});
        d.addCallback([](int) {});
      },
      "already has a consumer");
  EXPECT_DEATH(
      {
        Deferred<int> d;
        std::thread t([&] { d.callback(1); });
        t.join();
      },
      "from another thread");
}

// --- coroutines ---------------------------------------------------------------------------------

// Counts live instances: a frame's locals are destroyed when it is.
struct Tracked {
  static int live;
  Tracked() { ++live; }
  ~Tracked() { --live; }
};
int Tracked::live = 0;

Deferred<int> addLater(FakeReactor& reactor, int a, int b) {
  Tracked local;
  Result<int> x = co_await deferLater(reactor, 1s, [a] { return a; });
  if (!x) co_return x.status();
  Result<int> y = co_await deferLater(reactor, 1s, [b] { return b; });
  if (!y) co_return y.status();
  co_return *x + *y;
}

TEST(Coroutine, AwaitsDeferredsAndReturnsOne) {
  FakeReactor reactor;
  int got = 0;
  addLater(reactor, 2, 3).addCallback([&](int n) { got = n; });
  EXPECT_EQ(Tracked::live, 1);  // suspended in the first co_await
  reactor.advance(1s);
  EXPECT_EQ(got, 0);
  reactor.advance(1s);
  EXPECT_EQ(got, 5);
  EXPECT_EQ(Tracked::live, 0);  // the frame finished and was freed
}

Deferred<void> failsWith(Status why) {
  Result<int> ready = co_await succeed(1);  // an already fired Deferred does not suspend
  EXPECT_TRUE(ready.isOk());
  co_return why;
}

TEST(Coroutine, FailuresAreValuesNotExceptions) {
  Status got;
  failsWith(Status(Status::Code::kTls, "bad certificate")).addErrback([&](const Status& s) {
    got = s;
  });
  EXPECT_EQ(got.message(), "bad certificate");

  bool ok = false;
  failsWith(Status::ok()).addCallback([&] { ok = true; });
  EXPECT_TRUE(ok);
}

Deferred<std::string> relay(Deferred<int> in) {
  Result<int> r = co_await in;
  if (!r) co_return Status(r.status()).withContext("relay");
  co_return std::to_string(*r);
}

TEST(Coroutine, SeesTheFailureOfWhatItAwaits) {
  Deferred<int> in;
  Status got;
  relay(in).addBoth([&](Result<std::string> r) { got = r.status(); });
  in.errback(Status(Status::Code::kRefused, "refused"));
  EXPECT_EQ(got.message(), "relay: refused");
}

TEST(Coroutine, CancelCancelsTheAwaitedDeferredAndDestroysTheFrame) {
  FakeReactor reactor;
  Status got;
  Deferred<int> sum = addLater(reactor, 1, 2);
  sum.addBoth([&](Result<int> r) { got = r.status(); });
  EXPECT_EQ(Tracked::live, 1);
  EXPECT_EQ(reactor.pendingTimers(), 1u);
  testing::internal::CaptureStderr();
  sum.cancel();
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");  // no cancellation logged as unhandled
  EXPECT_EQ(Tracked::live, 0);           // the frame is gone, without being resumed
  EXPECT_EQ(reactor.pendingTimers(), 0u);  // the awaited deferLater was cancelled
  EXPECT_EQ(got.code(), Status::Code::kCancelled);
  reactor.advance(10s);
}

Deferred<int> outerOf(FakeReactor& reactor) {
  Tracked local;
  Result<int> r = co_await addLater(reactor, 10, 20);
  if (!r) co_return r.status();
  co_return *r + 1;
}

TEST(Coroutine, CancelReachesNestedCoroutines) {
  FakeReactor reactor;
  Deferred<int> outer = outerOf(reactor);
  EXPECT_EQ(Tracked::live, 2);
  Status got;
  outer.addBoth([&](Result<int> r) { got = r.status(); });
  testing::internal::CaptureStderr();
  outer.cancel();
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(Tracked::live, 0);
  EXPECT_EQ(reactor.pendingTimers(), 0u);
  EXPECT_EQ(got.code(), Status::Code::kCancelled);

  int value = 0;
  outerOf(reactor).addCallback([&](int n) { value = n; });
  reactor.advance(1s);
  reactor.advance(1s);
  EXPECT_EQ(value, 31);
  EXPECT_EQ(Tracked::live, 0);
}

TEST(Coroutine, TimeoutOnACoroutineDestroysItsFrame) {
  FakeReactor reactor;
  Status got;
  addLater(reactor, 1, 2).addTimeout(1500ms, reactor).addBoth([&](Result<int> r) {
    got = r.status();
  });
  reactor.advance(1s);
  EXPECT_EQ(Tracked::live, 1);
  testing::internal::CaptureStderr();
  reactor.advance(500ms);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(Tracked::live, 0);
  EXPECT_EQ(got.code(), Status::Code::kTimeout);
  EXPECT_EQ(got.message(), "timed out after 1500 ms");
}

Deferred<int> waitsOn(Deferred<int> d) {
  Tracked local;
  Result<int> r = co_await std::move(d);
  co_return r;
}

TEST(Coroutine, AFrameWaitingOnADeferredNobodyCanFireIsFreed) {
  Deferred<int> result;
  {
    Deferred<int> orphan;
    result = waitsOn(orphan);
    EXPECT_EQ(Tracked::live, 1);
  }  // the only holder of `orphan` drops it: nothing can ever resume the frame
  EXPECT_EQ(Tracked::live, 0);
  EXPECT_FALSE(result.called());
}

Deferred<void> cancelsItself(Deferred<void> gate, Deferred<void>* self, int* after) {
  Tracked local;
  Status opened = co_await std::move(gate);
  EXPECT_TRUE(opened.isOk());
  self->cancel();  // e.g. a callback it called decided to stop it
  ++*after;        // it runs on until its next co_await...
  Result<int> ready = co_await succeed(1);  // ...which ends it, even on a Deferred that fired
  (void)ready;
  ++*after;  // never reached
  co_return {};
}

TEST(Coroutine, CancelledWhileRunningEndsAtItsNextAwait) {
  Deferred<void> gate;
  int after = 0;
  Deferred<void> self = cancelsItself(gate, &self, &after);
  Status got;
  self.addBoth([&](Status s) { got = s; });
  EXPECT_EQ(Tracked::live, 1);
  gate.callback();
  EXPECT_EQ(after, 1);
  EXPECT_EQ(Tracked::live, 0);
  EXPECT_EQ(got.code(), Status::Code::kCancelled);
}

Deferred<int> sumOrFail(Deferred<int> a, Result<int> b) {
  WHORL_CO_TRY(int x, co_await std::move(a));
  WHORL_CO_TRY(auto y, std::move(b));
  co_return x + y;
}

TEST(Coroutine, CoTryPassesValuesOnAndReturnsFailures) {
  int got = 0;
  sumOrFail(succeed(2), 3).addCallback([&](int n) { got = n; });
  EXPECT_EQ(got, 5);
  Status why;
  sumOrFail(succeed(2), Status(Status::Code::kIo, "disk")).addErrback([&](const Status& s) {
    why = s;
    return 0;
  });
  EXPECT_EQ(why.message(), "disk");
  sumOrFail(fail<int>(Status(Status::Code::kRefused, "no")), 1).addErrback([&](const Status& s) {
    why = s;
    return 0;
  });
  EXPECT_EQ(why.message(), "no");
}

// The GCC 12 workaround deferred.h documents: a lambda capturing a std::string is built in a
// variable, not inside the co_await expression (ASan checks nothing is freed twice).
Deferred<std::string> greetLater(FakeReactor& reactor, std::string name) {
  auto greet = [name] { return "hello, " + name; };
  Result<std::string> greeting = co_await deferLater(reactor, 1s, greet);
  co_return greeting;
}

TEST(Coroutine, CapturingLambdasBuiltOutsideTheAwait) {
  FakeReactor reactor;
  std::string got;
  greetLater(reactor, std::string(40, 'x')).addCallback([&](std::string s) { got = s; });
  reactor.advance(1s);
  EXPECT_EQ(got, "hello, " + std::string(40, 'x'));
}

Deferred<void> endsWithoutCoReturn(bool end) {
  if (end) co_return {};
  co_await succeed();
}

TEST(CoroutineDeathTest, EndingWithoutCoReturnAbortsWithAMessage) {
  EXPECT_DEATH(endsWithoutCoReturn(false), "ended without co_return");
}

}  // namespace
}  // namespace whorl::api
