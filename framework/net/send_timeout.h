// SendTimeout: ends a connection whose output makes no progress for `timeout`: no send completes
// and the kernel's send queue does not shrink (the peer stopped reading, its window is shut).
//
//   SendTimeout sendTimeout_{shard_, fd_, options_.sendTimeout, *this};   // a transport member
//   sendTimeout_.sendStarted();   // each send submitted (a completion is followed by the next)
//   sendTimeout_.stop();          // the connection is closing
//   // Owner::sendWaiting() says whether a send is still in the ring; Owner::sendTimedOut(reason)
//   // closes with a reset.
//
// A peer that stops reading is closed between `timeout` and 1.25 `timeout` after the last
// progress; one that takes bytes at least once per `timeout`, however few, never is. Zero:
// never. One timer per connection, armed when a send starts and none is armed, so the data path
// pays one clock read per send. Owns its timer (cancelled with it) and what it saw of a send that
// waits; borrows the shard and the socket (for SIOCOUTQ), both of which the owner keeps.
#pragma once

#include <chrono>
#include <memory>

#include "framework/api/reactor.h"
#include "framework/base/status.h"
#include "framework/reactor/shard.h"

namespace whorl::net {

class SendTimeout {
 public:
  class Owner {
   public:
    // A send is in the ring and the connection is not closing: the timer keeps watching.
    virtual bool sendWaiting() const = 0;
    // No progress for the timeout: close with `reason` (kTimeout), by a reset.
    virtual void sendTimedOut(Status reason) = 0;

   protected:
    ~Owner() = default;
  };

  SendTimeout(reactor::Shard& shard, int fd, std::chrono::milliseconds timeout, Owner& owner);
  ~SendTimeout();
  SendTimeout(const SendTimeout&) = delete;
  SendTimeout& operator=(const SendTimeout&) = delete;

  void sendStarted();
  void stop();

 private:
  using Clock = reactor::Shard::Clock;
  Clock::duration checkPeriod() const;
  void arm(Clock::duration delay);
  void onTimer();

  reactor::Shard& shard_;
  int fd_;
  std::chrono::milliseconds timeout_;
  Owner& owner_;
  bool armed_ = false;
  // When the send in flight was submitted (a completion is followed by the next submission, so
  // this is also the last progress the completions show), the one timer that checks, and what it
  // saw of a send that waits (only while one does).
  Clock::time_point since_{};
  api::DelayedCall timer_;
  struct Stall {
    Clock::time_point send;   // since_ of the send it is about
    Clock::time_point since;  // the kernel's queue has been `queued` since then
    int queued = 0;           // SIOCOUTQ then
  };
  std::unique_ptr<Stall> stall_;
};

}  // namespace whorl::net
