// Sharded<T> across two real shards (run it under TSan too): one instance per shard touched only by
// its thread, invokeOn answering on the caller's shard (values, failures, Deferreds), invokeOnAll,
// mapReduce, the bounded mailbox refusing a flood with a counter and a clear error, and the shard
// index and count a protocol sees through its reactor.
#include "framework/reactor/sharded.h"

#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <thread>

#include "framework/reactor/react.h"

namespace whorl::reactor {
namespace {

using namespace std::chrono_literals;
using api::Deferred;

struct Counter {
  int hits = 0;
  std::thread::id owner;  // the thread that touched it first
  void touch() {
    if (owner == std::thread::id()) owner = std::this_thread::get_id();
    EXPECT_EQ(owner, std::this_thread::get_id()) << "an instance was touched by two threads";
    ++hits;
  }
};

ReactOptions twoShards(size_t mailboxCapacity = 65536) {
  ReactOptions o;
  o.runtime.shards = 2;
  o.runtime.pinThreads = false;
  o.runtime.buffers.count = 16;
  o.runtime.mailboxCapacity = mailboxCapacity;
  return o;
}

// Runs main on shard 0 of a two-shard runtime (react) with a Sharded<Counter> built on it. The
// runtime is made by react, so the Sharded is built on the first shard's thread before anything
// posts to the second.
template <typename F>
int withCounters(F body, ReactOptions options = twoShards()) {
  std::unique_ptr<Sharded<Counter>> counters;
  return react(
      [&](Shard& shard) -> Deferred<void> {
        counters = std::make_unique<Sharded<Counter>>(*shard.runtime());
        return body(shard, *counters);
      },
      options);
}

TEST(Sharded, InvokeOnRunsOnTheTargetShardAndAnswersHere) {
  int rc = withCounters([](Shard& shard, Sharded<Counter>& counters) -> Deferred<void> {
    EXPECT_EQ(shard.shardIndex(), 0);
    EXPECT_EQ(shard.shardCount(), 2);
    counters.local().touch();
    std::thread::id here = std::this_thread::get_id();
    Result<int> where = co_await counters.invokeOn(1, [](Counter& c) {
      c.touch();
      return Shard::current()->index();
    });
    EXPECT_EQ(std::this_thread::get_id(), here);  // the Deferred fired back on shard 0
    EXPECT_TRUE(where.isOk());
    EXPECT_EQ(*where, 1);
    // Failures come back as failures, and Deferreds are waited for on the target.
    Result<int> failed = co_await counters.invokeOn(1, [](Counter&) -> Result<int> {
      return Status(Status::Code::kUnavailable, "full");
    });
    EXPECT_EQ(failed.status().message(), "full");
    Result<int> later = co_await counters.invokeOn(1, [](Counter& c) {
      return api::deferLater(*Shard::current(), 1ms, [&c] { return c.hits; });
    });
    EXPECT_EQ(*later, 1);
    Result<int> local = co_await counters.invokeOn(0, [](Counter& c) { return c.hits; });
    EXPECT_EQ(*local, 1);
    Result<int> nowhere = co_await counters.invokeOn(5, [](Counter&) { return 0; });
    EXPECT_EQ(nowhere.status().code(), Status::Code::kInvalidArgument);
    co_return {};
  });
  EXPECT_EQ(rc, 0);
}

TEST(Sharded, InvokeOnAllAndMapReduce) {
  int rc = withCounters([](Shard&, Sharded<Counter>& counters) -> Deferred<void> {
    for (int round = 0; round < 3; ++round) {
      Status s = co_await counters.invokeOnAll([](Counter& c) { c.touch(); });
      EXPECT_TRUE(s.isOk());
    }
    Result<int> total =
        co_await counters.mapReduce([](Counter& c) { return c.hits; }, 0, std::plus<>());
    EXPECT_EQ(*total, 6);
    Result<std::string> order = co_await counters.mapReduce(
        [](Counter&) { return std::to_string(Shard::current()->index()); }, std::string(),
        [](std::string acc, std::string v) { return acc + v; });
    EXPECT_EQ(*order, "01");  // reduced in shard order
    co_return {};
  });
  EXPECT_EQ(rc, 0);
}

TEST(Sharded, AFloodIsRefusedWithACounterInsteadOfQueuedWithoutBound) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  int rc = withCounters(
      [&](Shard& shard, Sharded<Counter>& counters) -> Deferred<void> {
        Shard& other = shard.runtime()->shard(1);
        // Shard 1 is busy (blocked on a future the test releases): its mailbox fills up.
        std::promise<void> blocked;
        other.post([&blocked, released] {
          blocked.set_value();
          released.wait();
        });
        blocked.get_future().wait();
        std::vector<Deferred<int>> sent;
        for (int i = 0; i < 10; ++i) {
          sent.push_back(counters.invokeOn(1, [](Counter& c) {
            c.touch();
            return c.hits;
          }));
        }
        EXPECT_EQ(other.stats().mailboxRejected.load(), 6u);
        EXPECT_EQ(other.mailboxDepth(), 4u);
        for (int i = 4; i < 10; ++i) {
          Result<int> r = co_await sent[static_cast<size_t>(i)];
          EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
          EXPECT_NE(r.status().message().find("shard 1's mailbox is full (4 messages waiting)"),
                    std::string::npos)
              << r.status().message();
        }
        release.set_value();
        for (int i = 0; i < 4; ++i) {
          Result<int> r = co_await sent[static_cast<size_t>(i)];
          EXPECT_EQ(*r, i + 1);  // in order, each counted once
        }
        co_return {};
      },
      twoShards(4));
  EXPECT_EQ(rc, 0);
}

TEST(ShardedDeathTest, LocalOutsideAShardSaysWhy) {
  EXPECT_DEATH(
      {
        Runtime runtime(RuntimeOptions{.shards = 1, .pinThreads = false});
        Sharded<Counter> counters(runtime);
        counters.local();
      },
      "must be called on a shard");
}

}  // namespace
}  // namespace whorl::reactor
