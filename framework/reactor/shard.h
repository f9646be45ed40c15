// Shard: one thread, one io_uring, its timers, its mailbox, and the connections that live on it.
//
//   runtime.shard(0).post([] { /* runs on shard 0's thread */ });       // from any thread
//   Status s = runtime.shard(1).tryPost(fn);   // bounded: kUnavailable when shard 1 falls behind
//   // on the shard's own thread:
//   auto call = shard.callLater(std::chrono::milliseconds(100), [] { ... });
//   io_uring_sqe* sqe = shard.ring().sqe();
//
// Objects live on one shard and are only touched from its thread; cross-shard work goes through
// post(). A loop turn: submit and wait, dispatch completions, run due timers and callSoon work,
// then the turn-end tasks (flush gathered writes, re-arm receives), then free what was released
// during the turn. The Runtime owns its Shards; a Shard owns its ring, buffer ring and timers, and
// every Resident (connection, listener) registered with it until the resident releases itself.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "framework/api/deferred.h"
#include "framework/api/reactor.h"
#include "framework/base/status.h"
#include "framework/uring/buf_ring.h"
#include "framework/uring/ring.h"

namespace whorl::reactor {

class Runtime;
class Shard;

// Work done once at the end of a loop turn (gathered writes are flushed here).
class TurnTask {
 public:
  virtual void onTurnEnd() = 0;

 protected:
  ~TurnTask() = default;

 private:
  friend class Shard;
  bool queued_ = false;
};

// Something that lives on a shard until it releases itself: connections, listeners, connectors.
// The shard tells residents to wind down when the runtime stops.
class Resident {
 public:
  virtual ~Resident() = default;
  enum class ShutdownPhase {
    kStopAccepting,  // the runtime is stopping: listeners close, connections may finish (both
                     // tell the application: Factory/Protocol::stopRequested(drainDeadline()))
    kClose,          // the drain deadline passed: close gracefully (flush, then close)
    kAbort,          // a grace period later: close now
  };
  virtual void onShutdown(ShutdownPhase phase) = 0;

 private:
  friend class Shard;
  // The shard's list of residents, in the resident itself: adopting one allocates nothing.
  Resident* residentPrev_ = nullptr;
  Resident* residentNext_ = nullptr;
  bool adopted_ = false;
};

struct ShardStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};
  std::atomic<uint64_t> acceptErrors{0};
  std::atomic<uint64_t> open{0};
  std::atomic<uint64_t> closed{0};
  std::atomic<uint64_t> bytesIn{0};
  std::atomic<uint64_t> bytesOut{0};
  std::atomic<uint64_t> recvRearms{0};  // multishot receives re-armed after -ENOBUFS
  std::atomic<uint64_t> proxyErrors{0};  // PROXY protocol headers malformed, oversized or late
  std::atomic<uint64_t> mailboxRejected{0};  // tryPost() refused: the mailbox was full
  uring::RingStats ring;  // the shard's ring counts here (ShardOptions::ring.stats is ignored)
};

struct ShardOptions {
  int index = 0;
  int cpu = -1;  // pin the thread to this CPU; -1 leaves it unpinned
  uring::RingOptions ring{};
  uring::BufferRingOptions buffers{};
  // Messages tryPost() lets wait in the mailbox before it refuses more (post() is not bounded: the
  // framework's own messages are few and must not be dropped).
  size_t mailboxCapacity = 65536;
};

class Shard final : public api::Reactor {
 public:
  Shard(Runtime* runtime, ShardOptions options);
  ~Shard() override;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  int index() const { return options_.index; }
  // The shard whose thread is calling, or nullptr.
  static Shard* current();
  bool onShardThread() const { return current() == this; }

  // Thread-safe: runs fn on this shard's thread, in posting order.
  void post(std::function<void()> fn);
  // post(), unless mailboxCapacity messages are already waiting: then fn is dropped (destroyed on
  // the calling thread), stats().mailboxRejected counts it, and the result says so. Use it for
  // application messages, which a flood could otherwise queue without bound.
  Status tryPost(std::function<void()> fn);
  size_t mailboxDepth() const { return mailboxDepth_.load(std::memory_order_relaxed); }

  // api::Reactor (shard thread only, except stop()).
  api::DelayedCall callLater(Clock::duration delay, Callback fn) override;
  void callSoon(Callback fn) override;
  void stop() override;
  Clock::time_point now() const override { return Clock::now(); }
  int shardIndex() const override { return options_.index; }
  int shardCount() const override;

  // Shard thread only.
  uring::Ring& ring() { return *ring_; }
  uring::ProvidedBufferRing& buffers() { return *buffers_; }
  void scheduleTurnEnd(TurnTask* task);
  void adopt(Resident* resident);                 // the shard now owns it
  void release(Resident* resident);               // freed at the end of this turn
  bool stopping() const { return stopping_; }
  // Once stopping(): when the drain closes the connections still open (kClose).
  Clock::time_point drainDeadline() const { return drainDeadline_; }
  // Fires when this shard starts draining (at once if it has): what a server's main awaits,
  //   co_return co_await reactor.whenStopping();   // serve until SIGINT/SIGTERM or stop()
  api::Deferred<void> whenStopping();
  size_t residentCount() const { return residentCount_; }
  ShardStats& stats() { return stats_; }
  Runtime* runtime() const { return runtime_; }
  // A shard stands for its runtime where one is asked for, as Twisted's one reactor does:
  // listenSSL(reactor, ...) in a react() main listens on every shard of the runtime.
  operator Runtime&() const { return *runtime_; }  // NOLINT: implicit by design
  // The io_uring set-up mode; set before run() reports ready, constant after.
  const std::string& ringMode() const { return ringMode_; }

  // Runs the loop on the calling thread until the shard has stopped. Used by Runtime.
  void run(std::function<void(Status)> ready);
  // Thread-safe: begin a graceful stop; connections get `drain` to finish, then are closed.
  void beginStop(Clock::duration drain);

 protected:
  void cancelCall(uint64_t id) override;
  bool callActive(uint64_t id) const override;

 private:
  void onMailbox(int res, uint32_t flags);
  void armMailbox();
  void drainMailbox();
  void runTimers();
  void runTurnEnd();
  void startStop(Clock::duration drain);
  void shutdownResidents(Resident::ShutdownPhase phase);

  Runtime* runtime_;
  ShardOptions options_;
  std::unique_ptr<uring::Ring> ring_;
  std::unique_ptr<uring::ProvidedBufferRing> buffers_;
  std::string ringMode_;

  // Mailbox: an eventfd read on the ring wakes the shard.
  int eventFd_ = -1;
  uint64_t eventValue_ = 0;
  uring::MemberOp<Shard, &Shard::onMailbox> mailboxOp_{this};
  std::mutex mailboxMu_;
  std::vector<std::function<void()>> mailbox_;
  std::atomic<bool> wakePending_{false};
  std::atomic<size_t> mailboxDepth_{0};

  // Timers: ordered by (deadline, id); ids are unique so handles never alias.
  std::map<std::pair<Clock::time_point, uint64_t>, Callback> timers_;
  std::map<uint64_t, Clock::time_point> timerIndex_;
  uint64_t nextTimerId_ = 1;
  std::vector<Callback> soon_;

  std::vector<TurnTask*> turnEnd_;
  // Swapped with the live lists each turn so that running them allocates nothing.
  std::vector<TurnTask*> turnEndScratch_;
  std::vector<Callback> soonScratch_;
  std::vector<Resident*> releasedScratch_;
  Resident* residents_ = nullptr;  // adopted and not released (Resident::residentNext_)
  size_t residentCount_ = 0;
  std::vector<Resident*> released_;

  bool stopping_ = false;
  Clock::time_point drainDeadline_{};
  std::vector<api::Deferred<void>> stopWaiters_;
  ShardStats stats_;
};

}  // namespace whorl::reactor
