// Shards and the runtime: timers (callLater, cancel), callSoon, the cross-thread mailbox, start and
// stop. Everything waits on promises, never on sleeps.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "framework/reactor/runtime.h"

namespace whorl::reactor {
namespace {

using namespace std::chrono_literals;

RuntimeOptions testOptions(int shards) {
  RuntimeOptions o;
  o.shards = shards;
  o.pinThreads = false;
  o.buffers.count = 16;
  return o;
}

// Runs fn on the shard and waits for its result.
template <typename F>
auto onShard(Shard& shard, F fn) -> decltype(fn()) {
  std::promise<decltype(fn())> p;
  shard.post([&] { p.set_value(fn()); });
  return p.get_future().get();
}

TEST(ReactorTest, StartLogsOneRingModeAndStops) {
  Runtime rt(testOptions(2));
  ASSERT_TRUE(rt.start().isOk());
  EXPECT_EQ(rt.shardCount(), 2);
  EXPECT_EQ(rt.ringMode(), "single_issuer+defer_taskrun");
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, DefaultShardCountIsOnePerCpu) {
  Runtime rt(testOptions(0));
  EXPECT_EQ(rt.shardCount(), static_cast<int>(std::thread::hardware_concurrency()));
}

TEST(ReactorTest, TimersFireInDeadlineOrder) {
  Runtime rt(testOptions(1));
  ASSERT_TRUE(rt.start().isOk());
  Shard& s = rt.shard(0);
  std::vector<int> order;
  std::promise<void> done;
  s.post([&] {
    s.callLater(30ms, [&] {
      order.push_back(3);
      done.set_value();
    });
    s.callLater(10ms, [&] { order.push_back(1); });
    s.callLater(20ms, [&] { order.push_back(2); });
    s.callLater(0ms, [&] { order.push_back(0); });
  });
  done.get_future().get();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, TimerWaitsAtLeastItsDelay) {
  Runtime rt(testOptions(1));
  ASSERT_TRUE(rt.start().isOk());
  Shard& s = rt.shard(0);
  std::promise<std::chrono::steady_clock::duration> elapsed;
  s.post([&] {
    auto start = std::chrono::steady_clock::now();
    s.callLater(25ms, [&, start] { elapsed.set_value(std::chrono::steady_clock::now() - start); });
  });
  EXPECT_GE(elapsed.get_future().get(), 25ms);
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, CancelledTimerNeverRunsAndHandleReportsIt) {
  Runtime rt(testOptions(1));
  ASSERT_TRUE(rt.start().isOk());
  Shard& s = rt.shard(0);
  std::atomic<bool> cancelledRan{false};
  std::promise<void> done;
  api::DelayedCall call;
  bool activeBefore = false, activeAfter = true;
  s.post([&] {
    call = s.callLater(5ms, [&] { cancelledRan = true; });
    activeBefore = call.active();
    call.cancel();
    activeAfter = call.active();
    call.cancel();  // twice is harmless
    // A later timer proves the loop got past the cancelled deadline.
    s.callLater(20ms, [&] { done.set_value(); });
  });
  done.get_future().get();
  EXPECT_TRUE(activeBefore);
  EXPECT_FALSE(activeAfter);
  EXPECT_FALSE(cancelledRan.load());
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, FiredTimerIsNoLongerActive) {
  Runtime rt(testOptions(1));
  ASSERT_TRUE(rt.start().isOk());
  Shard& s = rt.shard(0);
  std::promise<void> fired;
  api::DelayedCall call;
  s.post([&] { call = s.callLater(1ms, [&] { fired.set_value(); }); });
  fired.get_future().get();
  EXPECT_FALSE(onShard(s, [&] { return call.active(); }));
  onShard(s, [&] {
    call.cancel();  // after firing: no effect, no crash
    return 0;
  });
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, CallSoonRunsInTheSameTurnOrder) {
  Runtime rt(testOptions(1));
  ASSERT_TRUE(rt.start().isOk());
  Shard& s = rt.shard(0);
  std::vector<int> order;
  std::promise<void> done;
  s.post([&] {
    s.callSoon([&] { order.push_back(1); });
    s.callSoon([&] {
      order.push_back(2);
      done.set_value();
    });
    order.push_back(0);
  });
  done.get_future().get();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, MailboxDeliversEveryPostInOrderPerSender) {
  Runtime rt(testOptions(2));
  ASSERT_TRUE(rt.start().isOk());
  Shard& target = rt.shard(1);
  constexpr int kSenders = 4;
  constexpr int kPerSender = 5000;
  std::vector<std::vector<int>> seen(kSenders);  // touched only on the target shard
  std::atomic<int> total{0};
  std::promise<void> all;
  std::vector<std::thread> senders;
  for (int t = 0; t < kSenders; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPerSender; ++i) {
        target.post([&, t, i] {
          EXPECT_TRUE(target.onShardThread());
          seen[static_cast<size_t>(t)].push_back(i);
          if (total.fetch_add(1) + 1 == kSenders * kPerSender) all.set_value();
        });
      }
    });
  }
  for (auto& th : senders) th.join();
  all.get_future().get();
  for (int t = 0; t < kSenders; ++t) {
    ASSERT_EQ(seen[static_cast<size_t>(t)].size(), static_cast<size_t>(kPerSender));
    for (int i = 0; i < kPerSender; ++i) ASSERT_EQ(seen[static_cast<size_t>(t)][static_cast<size_t>(i)], i);
  }
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, ShardToShardPostRoundTrip) {
  Runtime rt(testOptions(2));
  ASSERT_TRUE(rt.start().isOk());
  std::promise<int> p;
  rt.shard(0).post([&] {
    int from = Shard::current()->index();
    rt.shard(1).post([&, from] {
      int via = Shard::current()->index();
      rt.shard(0).post([&, from, via] { p.set_value(from * 100 + via * 10 + Shard::current()->index()); });
    });
  });
  EXPECT_EQ(p.get_future().get(), 10);  // 0 -> 1 -> 0
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, PostBeforeStartRunsOnceStarted) {
  Runtime rt(testOptions(1));
  std::promise<int> p;
  rt.shard(0).post([&] { p.set_value(Shard::current() == &rt.shard(0) ? 1 : 0); });
  ASSERT_TRUE(rt.start().isOk());
  EXPECT_EQ(p.get_future().get(), 1);
  rt.stop(0ms);
  rt.join();
}

TEST(ReactorTest, StopFromAShardEndsRun) {
  Runtime rt(testOptions(2));
  rt.shard(1).post([&] { rt.shard(1).callLater(10ms, [&] { rt.shard(1).stop(); }); });
  EXPECT_EQ(rt.run(), 0);
}

TEST(ReactorTest, ResolverAnswersOnTheRequestingShard) {
  Runtime rt(testOptions(1));
  ASSERT_TRUE(rt.start().isOk());
  std::promise<std::pair<bool, std::string>> p;
  rt.shard(0).post([&] {
    rt.resolver().resolve("localhost", 80, AF_INET, rt.shard(0), [&](Result<std::vector<Address>> r) {
      p.set_value({rt.shard(0).onShardThread(), r ? r->front().toString() : r.status().message()});
    });
  });
  auto [onShard, addr] = p.get_future().get();
  EXPECT_TRUE(onShard);
  EXPECT_EQ(addr, "127.0.0.1:80");
  auto bad = Resolver::resolveNow("no-such-host.invalid", 80, AF_UNSPEC);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("no-such-host.invalid"), std::string::npos);
  rt.stop(0ms);
  rt.join();
}

}  // namespace
}  // namespace whorl::reactor
