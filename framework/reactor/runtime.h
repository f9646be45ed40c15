// Runtime: N shards (one per CPU by default), started together and stopped together.
//
//   Runtime runtime({.shards = 0});              // 0: one shard per online CPU
//   auto port = TCP4ServerEndpoint(runtime, 8000).listen(Factory::forProtocol<Echo>());
//   return runtime.run();                        // until SIGINT/SIGTERM or runtime.stop()
//
// run() starts the shards, waits for SIGINT/SIGTERM (or stop() from any thread), stops accepting,
// gives open connections `drainTimeout` to finish, closes the rest and returns 0. A second signal
// during the drain closes everything at once. Tests use start()/stop()/join() instead. The Runtime
// owns its Shards and their threads; destroy it only after join().
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "framework/base/status.h"
#include "framework/reactor/resolver.h"
#include "framework/reactor/shard.h"

namespace whorl::reactor {

// What run() tells the program about, on run()'s own thread (not a shard).
struct RunHooks {
  std::function<void()> ready;     // the shards are running (e.g. sd_notify READY=1)
  std::function<void()> reload;    // SIGHUP; when unset, SIGHUP keeps its default action
  std::function<void()> stopping;  // the first SIGINT/SIGTERM or stop(), before the drain
};

struct RuntimeOptions {
  int shards = 0;            // 0: one per online CPU
  bool pinThreads = true;    // pin shard i to the i-th online CPU
  std::chrono::milliseconds drainTimeout{10000};
  uring::RingOptions ring{};
  uring::BufferRingOptions buffers{};
  size_t mailboxCapacity = 65536;  // per shard, for Shard::tryPost (Sharded<T>::invokeOn)
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  int shardCount() const { return static_cast<int>(shards_.size()); }
  Shard& shard(int i) { return *shards_[static_cast<size_t>(i)]; }
  Resolver& resolver() { return resolver_; }
  const std::string& ringMode() const { return ringMode_; }

  // Starts every shard thread; returns once each has its ring, or the first set-up error.
  Status start();
  // Thread-safe, idempotent: stop accepting and drain for `drain` (default: options.drainTimeout).
  void stop();
  void stop(std::chrono::milliseconds drain);
  // True once stop() was called (from anywhere) or a stop signal arrived.
  bool stopRequested() const { return stopRequested_.load(); }
  // Waits until every shard has stopped.
  void join();
  // start(), wait for a signal or stop(), drain, join. Returns the process exit code (0), or 1
  // if the shards could not start (the reason is logged).
  int run(RunHooks hooks = {});

  // Sum of every shard's counters.
  uint64_t totalAccepted() const;
  uint64_t totalOpen() const;

 private:
  RuntimeOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  Resolver resolver_;
  std::string ringMode_;
  bool started_ = false;
  int stopFd_ = -1;  // eventfd: stop() wakes run()
  std::atomic<bool> stopRequested_{false};
};

}  // namespace whorl::reactor
