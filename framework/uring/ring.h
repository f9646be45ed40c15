// Ring: an owned io_uring with the set-up fallbacks whorl needs, and batched completion dispatch.
//
//   auto ring = Ring::create({.entries = 1024});
//   if (!ring) return ring.status();
//   io_uring_sqe* sqe = (*ring)->sqe();          // never null: submits to make room if full
//   io_uring_prep_nop(sqe);
//   Ring::setOp(sqe, &myOp);
//   (*ring)->submitAndWait(1, nullptr);
//   (*ring)->dispatch();                         // calls myOp.complete(res, flags)
//
// Set-up tries SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then no flags; mode() names the
// choice. With SINGLE_ISSUER only the creating thread may submit, so a shard creates its ring on
// its own thread. Not thread-safe: one thread owns a Ring.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <string>

#include "framework/base/status.h"
#include "framework/uring/op.h"

namespace whorl::uring {

struct RingOptions {
  unsigned entries = 1024;  // submission queue size; the completion queue is 4x
  // Try the newest set-up flags first. Tests turn this off to exercise the plain path.
  bool tryTaskrunFlags = true;
};

class Ring {
 public:
  static Result<std::unique_ptr<Ring>> create(const RingOptions& options);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // "single_issuer+defer_taskrun", "coop_taskrun" or "plain".
  const std::string& mode() const { return mode_; }
  io_uring* raw() { return &ring_; }

  // A free submission entry; submits pending entries to make room when the queue is full.
  io_uring_sqe* sqe();
  static void setOp(io_uring_sqe* sqe, Op* op) { io_uring_sqe_set_data(sqe, op); }

  // Submits pending entries and waits for at least `waitNr` completions or the timeout (null: no
  // timeout). Returns the number submitted or -errno; -ETIME and -EINTR are not failures.
  int submitAndWait(unsigned waitNr, const __kernel_timespec* timeout);
  int submit();
  unsigned pendingSubmissions() const { return io_uring_sq_ready(&ring_); }

  // Completes every available completion: copies a batch, frees the queue slots, then calls each
  // Op's complete(). Returns how many completions were dispatched.
  unsigned dispatch();

  uint64_t submittedTotal() const { return submittedTotal_; }

 private:
  Ring() = default;
  io_uring ring_{};
  bool initialized_ = false;
  std::string mode_;
  uint64_t submittedTotal_ = 0;
};

}  // namespace whorl::uring
