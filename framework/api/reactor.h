// Reactor: what a Protocol may ask of the event loop it runs on (Twisted's reactor, per shard).
//
//   DelayedCall ping = transport()->reactor().callLater(std::chrono::seconds(30), [this] {
//     sendLine("PING");
//   });
//   ping.cancel();                       // safe after it fired or was cancelled
//   transport()->reactor().stop();       // stop the whole runtime, like reactor.stop()
//
// Every call here is made from the reactor's own thread (a shard): protocols live on one shard and
// never need locks. The reactor owns scheduled callbacks; a DelayedCall is a weak handle.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace whorl::api {

class Reactor;

// A handle to a callLater() callback. Copyable, does not own the callback.
class DelayedCall {
 public:
  DelayedCall() = default;
  DelayedCall(Reactor* reactor, uint64_t id) : reactor_(reactor), id_(id) {}
  // Cancels the call if it has not run yet. No effect otherwise.
  void cancel();
  // True until the call runs or is cancelled.
  bool active() const;

 private:
  Reactor* reactor_ = nullptr;
  uint64_t id_ = 0;
};

class Reactor {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void()>;

  virtual ~Reactor() = default;
  // Runs fn after at least `delay` on this reactor's thread.
  virtual DelayedCall callLater(Clock::duration delay, Callback fn) = 0;
  // Runs fn on this reactor's thread at the end of the current loop turn.
  virtual void callSoon(Callback fn) = 0;
  // Stops the runtime this reactor belongs to (graceful, like reactor.stop()). Thread-safe.
  virtual void stop() = 0;
  virtual Clock::time_point now() const = 0;
  // Which shard this reactor is (0-based) and how many the runtime has: what a protocol needs to
  // reach per-shard state (reactor::Sharded) without asking anything global.
  virtual int shardIndex() const { return 0; }
  virtual int shardCount() const { return 1; }

 protected:
  friend class DelayedCall;
  virtual void cancelCall(uint64_t id) = 0;
  virtual bool callActive(uint64_t id) const = 0;
};

inline void DelayedCall::cancel() {
  if (reactor_ != nullptr) reactor_->cancelCall(id_);
}
inline bool DelayedCall::active() const {
  return reactor_ != nullptr && reactor_->callActive(id_);
}

}  // namespace whorl::api
