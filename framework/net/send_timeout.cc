#include "framework/net/send_timeout.h"

#include <sys/ioctl.h>

#include <linux/sockios.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace whorl::net {

SendTimeout::SendTimeout(reactor::Shard& shard, int fd, std::chrono::milliseconds timeout,
                         Owner& owner)
    : shard_(shard), fd_(fd), timeout_(timeout), owner_(owner) {}

SendTimeout::~SendTimeout() {
  if (armed_) timer_.cancel();
}

void SendTimeout::sendStarted() {
  // One send is in flight at a time and it completes as soon as the kernel takes any byte, so a
  // send completing is progress. But the kernel reports the socket writable only once a third of
  // its (autotuned, megabytes large) buffer is free: a slow reader can keep a send waiting far
  // longer than the timeout while it reads steadily. So the timer, while a send waits, also asks
  // the kernel how much it still holds (SIOCOUTQ: sent but unacknowledged, and unsent): when that
  // shrinks, the peer is reading. The data path pays one clock read per send; the timer is armed
  // only when none is, and the ioctl runs only for sends that already waited a check period.
  if (timeout_.count() <= 0) return;
  since_ = shard_.now();
  if (!armed_) arm(checkPeriod());
}

void SendTimeout::stop() {
  if (armed_) {
    armed_ = false;
    timer_.cancel();
  }
  stall_.reset();
}

SendTimeout::Clock::duration SendTimeout::checkPeriod() const {
  // A peer that stops reading is closed between timeout and 1.25 timeout after the last
  // progress; one that makes any within every timeout never is.
  return std::max<Clock::duration>(timeout_ / 4, std::chrono::milliseconds(1));
}

void SendTimeout::arm(Clock::duration delay) {
  armed_ = true;
  timer_ = shard_.callLater(delay, [this] { onTimer(); });
}

void SendTimeout::onTimer() {
  armed_ = false;
  if (!owner_.sendWaiting()) {
    stall_.reset();  // output is idle: the next send arms the timer again
    return;
  }
  auto now = shard_.now();
  auto period = checkPeriod();
  if (now - since_ < period) {
    stall_.reset();  // a send completed recently: progress
    arm(since_ + period - now);
    return;
  }
  int queued = 0;
  if (ioctl(fd_, SIOCOUTQ, &queued) != 0) queued = stall_ ? stall_->queued : 0;
  if (!stall_ || stall_->send != since_ || queued < stall_->queued) {
    // A first look at this send (whatever moved before it is not known: count from now), or
    // the kernel's queue shrank since the last look: the peer reads.
    if (!stall_) stall_ = std::make_unique<Stall>();
    *stall_ = {since_, now, queued};
  } else if (now - stall_->since >= timeout_) {
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g", timeout_.count() / 1000.0);
    // A reset, not a FIN: the peer reads nothing, so a graceful close would leave the unsent
    // bytes in the kernel for minutes more; the reset frees them (and the descriptor) now.
    owner_.sendTimedOut(Status(Status::Code::kTimeout,
                               std::string("send timeout: the peer accepted no data for ") +
                                   seconds + " s (it stopped reading); closing"));
    return;
  }
  arm(period);
}

}  // namespace whorl::net
