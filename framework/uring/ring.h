// Ring: an owned io_uring with the set-up fallbacks whorl needs, and batched completion dispatch.
//
//   auto ring = Ring::create({.entries = 1024});
//   if (!ring) return ring.status();
//   io_uring_sqe* sqe = (*ring)->sqe();          // never null: submits to make room if full
//   io_uring_prep_nop(sqe);
//   Ring::setOp(sqe, &myOp);                     // myOp.armed() from here...
//   (*ring)->submitAndWait(1, nullptr);
//   (*ring)->dispatch();                         // ...to here: disarms it, calls myOp.complete()
//
// Set-up tries SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then no flags; mode() names the
// choice. With SINGLE_ISSUER only the creating thread may submit, so a shard creates its ring on
// its own thread. Not thread-safe: one thread owns a Ring. RingStats (the slow paths' counters)
// belong to whoever passes them in RingOptions and may be read from any thread.
//
// A full submission queue is the slow path: sqe() submits to make room. When the kernel holds
// completions in its overflow list (the completion queue was full), or refuses the submit
// (-EBUSY on kernels that will not accept work while the overflow list is non-empty, -EAGAIN when
// short of memory), sqe() first copies the completion queue into a backlog, so the kernel has room
// again and the retry can succeed; it never runs an Op (a completion handler may call sqe()), and
// an Op whose completion waits in the backlog stays armed. dispatch() completes the backlog before
// the queue, in the order the kernel posted them.
//
// Quiet sends. A lone response at light load used to cost two io_uring_enter calls: one that
// submitted the send, which completed at once and so ended the wait, and one to sleep. A quiet
// send (prepSendQuiet) is MSG_DONTWAIT|MSG_WAITALL with IOSQE_CQE_SKIP_SUCCESS: the kernel issues
// it during the submit, and it posts a completion only when it did not send everything (the
// count it did send, or -EAGAIN / -errno). So the submit and the sleep are one call, and
// dispatch() delivers the full length to the op itself for each quiet send the kernel took and
// did not complete, after every completion that arrived with it.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "framework/base/status.h"
#include "framework/uring/op.h"

namespace whorl::uring {

// What the slow paths did. The ring's thread counts; any thread may read.
struct RingStats {
  std::atomic<uint64_t> submitRetries{0};  // submits made because the submission queue was full
  std::atomic<uint64_t> submitsRefused{0};  // of those, submits the kernel refused (-EBUSY, ...)
  std::atomic<uint64_t> cqOverflows{0};  // times completions were found in the overflow list
  std::atomic<uint64_t> cqDropped{0};  // completions the kernel lost (its cq.koverflow), last seen
};

struct RingOptions {
  unsigned entries = 1024;  // submission queue size; the completion queue is 4x
  // Try the newest set-up flags first. Tests turn this off to exercise the plain path.
  bool tryTaskrunFlags = true;
  // Where to count; must outlive the Ring. Null: the ring counts into its own (stats()).
  RingStats* stats = nullptr;
};

class Ring {
 public:
  static Result<std::unique_ptr<Ring>> create(const RingOptions& options);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // "single_issuer+defer_taskrun", "coop_taskrun" or "plain".
  const std::string& mode() const { return mode_; }
  // Whether io_uring_enter finds the ring through this thread's registered-ring table (5.18+).
  // The ring must then be driven from the thread that created it, as SINGLE_ISSUER requires too.
  bool ringFdRegistered() const { return ringFdRegistered_; }
  io_uring* raw() { return &ring_; }

  // A free submission entry; submits pending entries to make room when the queue is full.
  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr) [[unlikely]] s = makeRoom();
    io_uring_sqe_set_data(s, nullptr);
    return s;
  }
  // Tags `sqe` with `op` and arms it (Op::armed()) until its last completion is delivered.
  static void setOp(io_uring_sqe* sqe, Op* op) {
    io_uring_sqe_set_data(sqe, op);
    if (op != nullptr) ++op->submissions_;
  }

  // Whether this kernel can skip successful completions (5.17+): prepSendQuiet works.
  bool quietSends() const { return quietSends_; }
  // A send of `len` bytes from `buf` on a stream socket, as a quiet send (above): `op` completes
  // with `len` once the kernel took it and posted nothing, else with what the kernel posted (a
  // short count, -EAGAIN when the socket buffer was full, -errno). Not for kernel-TLS sockets
  // (they refuse MSG_WAITALL). Requires quietSends().
  void prepSendQuiet(Op* op, int fd, const void* buf, unsigned len, int flags);
  // Someone waits for a quiet send's completion (more bytes queued behind it, a close waiting
  // for the drain): the next submitAndWait only submits, so the next dispatch settles it.
  void settleSoon() { settleSoon_ = true; }

  // Submits pending entries and waits for at least `waitNr` completions or the timeout (null: no
  // timeout). Returns the number submitted or -errno; -ETIME and -EINTR are not failures. Does not
  // wait while the backlog holds completions: they are ready now.
  int submitAndWait(unsigned waitNr, const __kernel_timespec* timeout);
  int submit();
  unsigned pendingSubmissions() const { return io_uring_sq_ready(&ring_); }

  // Completes every available completion: the backlog first, then the queue (copies a batch,
  // frees the queue slots, then calls each Op's complete(), disarming the Op first when it is the
  // last completion of its submission). Returns how many were dispatched.
  unsigned dispatch();

  uint64_t submittedTotal() const { return submittedTotal_; }
  const RingStats& stats() const { return *stats_; }

 private:
  struct Completion {
    uint64_t data;
    int res;
    uint32_t flags;
  };

  Ring() = default;
  // A quiet send not settled yet: `index` is its submission-queue slot number (sqe_tail).
  struct Quiet {
    Op* op;
    unsigned index;
    unsigned len;
  };

  io_uring_sqe* makeRoom();
  unsigned settleQuiet();
  void reapIntoBacklog();
  void countOverflow();
  static void complete(const Completion& c);

  io_uring ring_{};
  bool initialized_ = false;
  bool ringFdRegistered_ = false;
  bool quietSends_ = false;
  bool settleSoon_ = false;
  std::vector<Quiet> quiet_;
  std::vector<Quiet> quietScratch_;
  std::string mode_;
  uint64_t submittedTotal_ = 0;
  RingStats ownStats_;
  RingStats* stats_ = &ownStats_;
  // Completions sqe() reaped to make room, oldest first; dispatch() completes them.
  std::vector<Completion> backlog_;
  std::vector<Completion> backlogScratch_;
};

}  // namespace whorl::uring
