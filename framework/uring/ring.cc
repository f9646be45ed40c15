#include "framework/uring/ring.h"

#include <cerrno>
#include <cstring>

#include <sys/socket.h>

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
      // Each io_uring_enter then names the ring by its index in this thread's table instead of
      // its fd: no fget/fput per call, which every request pays at light load (one wait, one
      // submit). Kernels before 5.18 refuse it; the fd works as before.
      ring->ringFdRegistered_ = io_uring_register_ring_fd(&ring->ring_) == 1;
      ring->quietSends_ = (p.features & IORING_FEAT_CQE_SKIP) != 0;
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

void Ring::prepSendQuiet(Op* op, int fd, const void* buf, unsigned len, int flags) {
  io_uring_sqe* s = sqe();
  io_uring_prep_send(s, fd, buf, len, flags | MSG_DONTWAIT | MSG_WAITALL);
  // DONTWAIT: the kernel never parks it to wait for room, so it ends during this submit (a short
  // or refused send ends as a failure, which is posted). WAITALL: a short send is a failure, not
  // a success whose completion would be skipped.
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
  setOp(s, op);
  op->quiet_ = true;
  quiet_.push_back({op, ring_.sq.sqe_tail - 1, len});
}

unsigned Ring::settleQuiet() {
  // Only sends the kernel has taken: a submit it cut short leaves the rest in the queue.
  unsigned head = IO_URING_READ_ONCE(*ring_.sq.khead);
  quietScratch_.swap(quiet_);
  unsigned settled = 0;
  for (const Quiet& q : quietScratch_) {
    if (static_cast<int>(head - q.index) <= 0) {
      quiet_.push_back(q);
      continue;
    }
    // Its failure completion, if it had one, was dispatched already and cleared quiet_.
    if (!q.op->quiet_) continue;
    ++settled;
    q.op->quiet_ = false;
    --q.op->submissions_;
    q.op->complete(static_cast<int>(q.len), 0);
  }
  quietScratch_.clear();
  return settled;
}

void Ring::complete(const Completion& c) {
  if (c.data == 0) return;
  Op* op = reinterpret_cast<Op*>(static_cast<uintptr_t>(c.data));
  op->quiet_ = false;  // a quiet send's completion: it fell short or failed
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
  if (settleSoon_) {
    settleSoon_ = false;
    return submit();
  }
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
  // Quiet sends the kernel has taken are settled once the queue and the backlog are empty, so
  // after the completions that came with them (their failures among them). Those still in the
  // submission queue wait for a later dispatch.
  bool settle = !quiet_.empty();
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
    if (n == 0) {
      if (!settle) break;
      // A quiet send's failure may sit in the kernel's overflow list: flush it in first.
      if (io_uring_cq_has_overflow(&ring_)) [[unlikely]] {
        countOverflow();
        io_uring_get_events(&ring_);
        if (io_uring_cq_ready(&ring_) != 0) continue;
      }
      settle = false;
      total += settleQuiet();
      if (!backlog_.empty() || io_uring_cq_ready(&ring_) != 0) continue;
      break;
    }
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
    if (n < kBatch && backlog_.empty() && !settle) break;
  }
  return total;
}

}  // namespace whorl::uring
