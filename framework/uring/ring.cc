#include "framework/uring/ring.h"

#include <cerrno>
#include <cstring>

#include "framework/base/log.h"

namespace whorl::uring {

Result<std::unique_ptr<Ring>> Ring::create(const RingOptions& options) {
  std::unique_ptr<Ring> ring(new Ring());
  if (options.stats != nullptr) ring->stats_ = options.stats;
  struct Attempt {
    unsigned flags;
    const char* name;
  };
  const Attempt attempts[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "single_issuer+defer_taskrun"},
      {IORING_SETUP_COOP_TASKRUN, "coop_taskrun"},
      {0, "plain"},
  };
  int err = 0;
  for (const auto& a : attempts) {
    if (!options.tryTaskrunFlags && a.flags != 0) continue;
    io_uring_params p{};
    p.flags = a.flags | IORING_SETUP_CQSIZE;
    p.cq_entries = options.entries * 4;
    err = io_uring_queue_init_params(options.entries, &ring->ring_, &p);
    if (err == 0) {
      ring->initialized_ = true;
      ring->mode_ = a.name;
      return ring;
    }
    // EINVAL: this kernel does not know the flags; try the next set.
    if (err != -EINVAL) break;
  }
  return Status::fromErrno(-err, "io_uring_queue_init");
}

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

io_uring_sqe* Ring::makeRoom() {
  bool logged = false;
  for (;;) {
    stats_->submitRetries.fetch_add(1, std::memory_order_relaxed);
    int n = submit();
    bool overflowing = io_uring_cq_has_overflow(&ring_);
    if (overflowing) countOverflow();
    if (n <= 0 || overflowing) {
      if (n <= 0) {
        stats_->submitsRefused.fetch_add(1, std::memory_order_relaxed);
        if (n != -EBUSY && n != -EAGAIN && n != -EINTR && !logged) {
          WHORL_LOG(kError, "io_uring_submit with a full queue failed: %s", std::strerror(-n));
          logged = true;
        }
      }
      // Empty the completion queue, let the kernel move what it holds (its overflow list, and
      // with DEFER_TASKRUN the completions it has not posted yet) into the room, and take those.
      size_t before = backlog_.size();
      reapIntoBacklog();
      io_uring_get_events(&ring_);
      reapIntoBacklog();
      if (n <= 0 && backlog_.size() == before) {
        // Refused, and nothing completed that could free what the kernel is short of: sleep in
        // the kernel until something completes rather than spin on the refusal.
        io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
        io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
        reapIntoBacklog();
      }
    }
    if (io_uring_sqe* s = io_uring_get_sqe(&ring_)) return s;
  }
}

void Ring::reapIntoBacklog() {
  io_uring_cqe* cqe;
  unsigned head;
  unsigned n = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    backlog_.push_back({cqe->user_data, cqe->res, cqe->flags});
    ++n;
  }
  io_uring_cq_advance(&ring_, n);
}

void Ring::countOverflow() {
  stats_->cqOverflows.fetch_add(1, std::memory_order_relaxed);
  stats_->cqDropped.store(IO_URING_READ_ONCE(*ring_.cq.koverflow), std::memory_order_relaxed);
}

void Ring::complete(const Completion& c) {
  if (c.data == 0) return;
  Op* op = reinterpret_cast<Op*>(static_cast<uintptr_t>(c.data));
  // Disarmed before complete() runs: the handler sees whether more will come, and may let the
  // op's owner be freed (nothing here touches the op after complete()).
  if (!(c.flags & IORING_CQE_F_MORE)) --op->submissions_;
  op->complete(c.res, c.flags);
}

int Ring::submit() {
  int n = io_uring_submit(&ring_);
  if (n > 0) submittedTotal_ += static_cast<uint64_t>(n);
  return n;
}

int Ring::submitAndWait(unsigned waitNr, const __kernel_timespec* timeout) {
  if (!backlog_.empty()) [[unlikely]] return submit();
  io_uring_cqe* cqe = nullptr;
  unsigned ready = io_uring_sq_ready(&ring_);
  int n;
  if (timeout != nullptr) {
    n = io_uring_submit_and_wait_timeout(&ring_, &cqe, waitNr,
                                         const_cast<__kernel_timespec*>(timeout), nullptr);
    // submit_and_wait_timeout returns 0 or -errno rather than the count it submitted.
    if (n >= 0) n = static_cast<int>(ready);
  } else {
    n = io_uring_submit_and_wait(&ring_, waitNr);
  }
  if (n > 0) submittedTotal_ += static_cast<uint64_t>(n);
  return n;
}

unsigned Ring::dispatch() {
  constexpr unsigned kBatch = 256;
  unsigned total = 0;
  bool overflowChecked = false;
  for (;;) {
    // The backlog is older than anything in the queue. Ops may add to it (their sqe() calls reap
    // what completed since): those go after the ones being completed, and are taken next round.
    if (!backlog_.empty()) [[unlikely]] {
      backlogScratch_.swap(backlog_);
      for (const Completion& c : backlogScratch_) complete(c);
      total += static_cast<unsigned>(backlogScratch_.size());
      backlogScratch_.clear();
      continue;
    }
    io_uring_cqe* cqes[kBatch];
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kBatch);
    if (n == 0) break;
    // Only a full queue can have completions waiting in the kernel's overflow list.
    if ((n == kBatch || n == ring_.cq.ring_entries) && !overflowChecked) [[unlikely]] {
      overflowChecked = true;
      if (io_uring_cq_has_overflow(&ring_)) countOverflow();
    }
    Completion done[kBatch];
    for (unsigned i = 0; i < n; ++i) done[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) complete(done[i]);
    total += n;
    if (n < kBatch && backlog_.empty()) break;
  }
  return total;
}

}  // namespace whorl::uring
