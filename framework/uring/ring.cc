#include "framework/uring/ring.h"

#include <cerrno>

namespace whorl::uring {

Result<std::unique_ptr<Ring>> Ring::create(const RingOptions& options) {
  std::unique_ptr<Ring> ring(new Ring());
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

io_uring_sqe* Ring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (s == nullptr) {
    submit();
    s = io_uring_get_sqe(&ring_);
  }
  io_uring_sqe_set_data(s, nullptr);
  return s;
}

int Ring::submit() {
  int n = io_uring_submit(&ring_);
  if (n > 0) submittedTotal_ += static_cast<uint64_t>(n);
  return n;
}

int Ring::submitAndWait(unsigned waitNr, const __kernel_timespec* timeout) {
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
  struct Done {
    uint64_t data;
    int res;
    uint32_t flags;
  };
  unsigned total = 0;
  for (;;) {
    io_uring_cqe* cqes[kBatch];
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, kBatch);
    if (n == 0) break;
    Done done[kBatch];
    for (unsigned i = 0; i < n; ++i) done[i] = {cqes[i]->user_data, cqes[i]->res, cqes[i]->flags};
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) {
      if (done[i].data == 0) continue;
      reinterpret_cast<Op*>(static_cast<uintptr_t>(done[i].data))->complete(done[i].res,
                                                                             done[i].flags);
    }
    total += n;
    if (n < kBatch) break;
  }
  return total;
}

}  // namespace whorl::uring
