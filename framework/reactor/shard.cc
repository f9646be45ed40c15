#include "framework/reactor/shard.h"

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>

#include "framework/base/log.h"
#include "framework/reactor/runtime.h"

namespace whorl::reactor {

namespace {
thread_local Shard* t_current = nullptr;
// After the drain deadline, connections get this long to flush before they are aborted.
constexpr auto kCloseGrace = std::chrono::seconds(1);
}  // namespace

Shard::Shard(Runtime* runtime, ShardOptions options) : runtime_(runtime), options_(options) {
  eventFd_ = eventfd(0, EFD_CLOEXEC);
}

Shard::~Shard() {
  while (residents_ != nullptr) {
    Resident* r = residents_;
    residents_ = r->residentNext_;
    delete r;
  }
  for (Resident* r : released_) delete r;
  buffers_.reset();
  ring_.reset();
  if (eventFd_ >= 0) close(eventFd_);
}

Shard* Shard::current() { return t_current; }

int Shard::shardCount() const { return runtime_ != nullptr ? runtime_->shardCount() : 1; }

Status Shard::tryPost(std::function<void()> fn) {
  size_t depth = mailboxDepth_.load(std::memory_order_relaxed);
  if (depth >= options_.mailboxCapacity) {
    stats_.mailboxRejected.fetch_add(1, std::memory_order_relaxed);
    return Status(Status::Code::kUnavailable,
                  "shard " + std::to_string(options_.index) + "'s mailbox is full (" +
                      std::to_string(depth) +
                      " messages waiting): that shard is not keeping up; send less, or wait "
                      "for replies before sending more (RuntimeOptions::mailboxCapacity)");
  }
  post(std::move(fn));
  return Status::ok();
}

void Shard::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mailboxMu_);
    mailbox_.push_back(std::move(fn));
    mailboxDepth_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!wakePending_.exchange(true, std::memory_order_acq_rel)) {
    uint64_t one = 1;
    ssize_t n = write(eventFd_, &one, sizeof(one));
    (void)n;  // eventfd writes of 1 cannot fail short of counter overflow
  }
}

void Shard::armMailbox() {
  io_uring_sqe* sqe = ring_->sqe();
  io_uring_prep_read(sqe, eventFd_, &eventValue_, sizeof(eventValue_), 0);
  uring::Ring::setOp(sqe, &mailboxOp_);
}

void Shard::onMailbox(int res, uint32_t) {
  if (res < 0 && res != -EINTR && res != -EAGAIN) {
    WHORL_LOG(kError, "mailbox read failed: %s", std::strerror(-res));
  }
  wakePending_.store(false, std::memory_order_release);
  drainMailbox();
  armMailbox();
}

void Shard::drainMailbox() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(mailboxMu_);
    work.swap(mailbox_);
    mailboxDepth_.fetch_sub(work.size(), std::memory_order_relaxed);
  }
  for (auto& fn : work) fn();
}

api::DelayedCall Shard::callLater(Clock::duration delay, Callback fn) {
  uint64_t id = nextTimerId_++;
  auto deadline = Clock::now() + (delay.count() > 0 ? delay : Clock::duration::zero());
  timers_.emplace(std::make_pair(deadline, id), std::move(fn));
  timerIndex_.emplace(id, deadline);
  return api::DelayedCall(this, id);
}

void Shard::cancelCall(uint64_t id) {
  auto it = timerIndex_.find(id);
  if (it == timerIndex_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timerIndex_.erase(it);
}

bool Shard::callActive(uint64_t id) const { return timerIndex_.count(id) != 0; }

void Shard::callSoon(Callback fn) { soon_.push_back(std::move(fn)); }

void Shard::stop() { runtime_->stop(); }

void Shard::runTimers() {
  if (timers_.empty()) return;
  auto now = Clock::now();
  while (!timers_.empty()) {
    auto it = timers_.begin();
    if (it->first.first > now) break;
    Callback fn = std::move(it->second);
    timerIndex_.erase(it->first.second);
    timers_.erase(it);
    fn();
  }
}

void Shard::scheduleTurnEnd(TurnTask* task) {
  if (task->queued_) return;
  task->queued_ = true;
  turnEnd_.push_back(task);
}

void Shard::runTurnEnd() {
  // Tasks may queue more tasks (a flush that completes a close); run until quiet.
  while (!turnEnd_.empty()) {
    turnEndScratch_.swap(turnEnd_);
    for (TurnTask* t : turnEndScratch_) {
      t->queued_ = false;
      t->onTurnEnd();
    }
    turnEndScratch_.clear();
  }
}

void Shard::adopt(Resident* resident) {
  if (resident->adopted_) return;
  resident->adopted_ = true;
  resident->residentPrev_ = nullptr;
  resident->residentNext_ = residents_;
  if (residents_ != nullptr) residents_->residentPrev_ = resident;
  residents_ = resident;
  ++residentCount_;
}

void Shard::release(Resident* resident) {
  if (!resident->adopted_) return;
  resident->adopted_ = false;
  if (resident->residentPrev_ != nullptr) {
    resident->residentPrev_->residentNext_ = resident->residentNext_;
  } else {
    residents_ = resident->residentNext_;
  }
  if (resident->residentNext_ != nullptr) resident->residentNext_->residentPrev_ = resident->residentPrev_;
  resident->residentPrev_ = resident->residentNext_ = nullptr;
  --residentCount_;
  released_.push_back(resident);  // deleted at the end of the turn, so still valid until then
}

api::Deferred<void> Shard::whenStopping() {
  if (stopping_) return api::succeed();
  api::Deferred<void> d;
  stopWaiters_.push_back(d);
  return d;
}

void Shard::beginStop(Clock::duration drain) {
  post([this, drain] { startStop(drain); });
}

void Shard::startStop(Clock::duration drain) {
  if (stopping_) {
    // A second stop request (a second Ctrl-C): do not wait any longer.
    if (drain == Clock::duration::zero()) shutdownResidents(Resident::ShutdownPhase::kAbort);
    return;
  }
  stopping_ = true;
  drainDeadline_ = Clock::now() + drain;
  shutdownResidents(Resident::ShutdownPhase::kStopAccepting);
  std::vector<api::Deferred<void>> waiters = std::move(stopWaiters_);
  stopWaiters_.clear();
  for (auto& w : waiters) w.callback();
  // The close comes at the deadline the residents were told, however long telling them took.
  callLater(drainDeadline_ - Clock::now(), [this] {
    shutdownResidents(Resident::ShutdownPhase::kClose);
    callLater(kCloseGrace, [this] { shutdownResidents(Resident::ShutdownPhase::kAbort); });
  });
}

void Shard::shutdownResidents(Resident::ShutdownPhase phase) {
  std::vector<Resident*> all;
  all.reserve(residentCount_);
  for (Resident* r = residents_; r != nullptr; r = r->residentNext_) all.push_back(r);
  for (Resident* r : all) {
    // A resident may release others (a listener never does; be safe anyway). Released ones are
    // deleted only at the end of the turn, so reading the flag is safe.
    if (r->adopted_) r->onShutdown(phase);
  }
}

void Shard::run(std::function<void(Status)> ready) {
  t_current = this;
  char tag[16];
  std::snprintf(tag, sizeof(tag), "s%d", options_.index);
  log::setThreadTag(tag);
  if (options_.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(options_.cpu, &set);
    int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (err != 0) WHORL_LOG(kWarning, "cannot pin to CPU %d: %s", options_.cpu, strerror(err));
  }
  if (eventFd_ < 0) {
    ready(Status::fromErrno(errno, "eventfd"));
    return;
  }
  uring::RingOptions ringOptions = options_.ring;
  ringOptions.stats = &stats_.ring;
  auto ring = uring::Ring::create(ringOptions);
  if (!ring) {
    ready(ring.status());
    return;
  }
  ring_ = std::move(ring.value());
  ringMode_ = ring_->mode();
  auto buffers = uring::ProvidedBufferRing::create(*ring_, options_.buffers);
  if (!buffers) {
    ready(buffers.status());
    return;
  }
  buffers_ = std::move(buffers.value());
  armMailbox();
  ready(Status::ok());

  for (;;) {
    if (stopping_ && residents_ == nullptr && soon_.empty() && released_.empty()) break;
    __kernel_timespec ts{};
    __kernel_timespec* timeout = nullptr;
    if (!soon_.empty() || !turnEnd_.empty()) {
      timeout = &ts;  // work is waiting: just poll
    } else if (!timers_.empty()) {
      auto wait = timers_.begin()->first.first - Clock::now();
      if (wait.count() < 0) wait = Clock::duration::zero();
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
      ts.tv_sec = ns / 1000000000;
      ts.tv_nsec = ns % 1000000000;
      timeout = &ts;
    }
    int rc = ring_->submitAndWait(1, timeout);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
      WHORL_LOG(kError, "io_uring_enter failed: %s", strerror(-rc));
    }
    ring_->dispatch();
    runTimers();
    if (!soon_.empty()) {
      soonScratch_.swap(soon_);
      for (auto& fn : soonScratch_) fn();
      soonScratch_.clear();
    }
    runTurnEnd();
    if (!released_.empty()) {
      releasedScratch_.swap(released_);
      for (Resident* r : releasedScratch_) delete r;
      releasedScratch_.clear();
    }
  }
  // The ring was created on this thread (SINGLE_ISSUER): tear it down here too.
  buffers_.reset();
  ring_.reset();
  t_current = nullptr;
}

}  // namespace whorl::reactor
