// FileSplicer: moves one file at a time to a socket without copying it through user space: splice
// from the file into a pipe, then from the pipe to the socket (over kernel TLS the kernel encrypts
// the pages), one splice in the ring at a time.
//
//   if (!splicer_) splicer_ = std::make_unique<FileSplicer>(ring, socketFd, owner);
//   Status s = splicer_->begin(std::move(job));   // the pipe, on first use
//   if (!s.isOk()) return fail(s);                 // the job is taken: finish(s) reports to it
//   splicer_->spliceNext();                        // completes in Owner::onSpliceIn / onSpliceOut
//   // onSpliceIn(res > 0):   splicer_->filled(res);  splicer_->spliceNext();
//   // onSpliceOut(res >= 0): splicer_->drained(res); more() ? spliceNext() : finish(ok)
//
// It does not decide what a completion means for the connection: the owner (TcpTransport) does,
// and sends nothing else on the socket while a file is busy(). Owns the pipe (made on first use,
// closed with the splicer), its two ops and the job being sent, whose callback finish() calls
// once. Borrows the socket, the ring and the job's file descriptor (the one who asked keeps it
// open until the callback); the owner lives until armed() is false.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "framework/base/status.h"
#include "framework/uring/op.h"
#include "framework/uring/ring.h"

namespace whorl::net {

// One sendFile: `remaining` bytes of `fd` from `offset`, then `done`.
struct FileJob {
  int fd;
  uint64_t offset;
  uint64_t remaining;
  std::function<void(Status)> done;
};

class FileSplicer {
 public:
  // Where the two ops' completions go (res: the kernel's result).
  class Owner {
   public:
    virtual void onSpliceIn(int res) = 0;   // file -> pipe completed
    virtual void onSpliceOut(int res) = 0;  // pipe -> socket completed

   protected:
    ~Owner() = default;
  };

  FileSplicer(uring::Ring& ring, int socketFd, Owner& owner);
  ~FileSplicer();
  FileSplicer(const FileSplicer&) = delete;
  FileSplicer& operator=(const FileSplicer&) = delete;

  // Takes `job` as the file being sent, making the pipe if there is none yet. Why not if the pipe
  // cannot be made (the job is taken all the same, so that finish() reports to it).
  Status begin(std::unique_ptr<FileJob> job);
  bool busy() const { return job_ != nullptr; }
  // Submits the next splice of the busy job: out of the pipe to the socket while the pipe holds
  // bytes, else from the file into the pipe.
  void spliceNext();
  // After a splice completed with res > 0 bytes into the pipe / res >= 0 out of it.
  void filled(size_t n);
  void drained(size_t n) { inPipe_ -= n; }
  // The job has bytes left in the file or in the pipe.
  bool more() const { return inPipe_ > 0 || job_->remaining > 0; }
  uint64_t remaining() const { return job_->remaining; }
  // Bytes spliced into the pipe and not yet out to the socket: they count as unsent.
  size_t inPipe() const { return inPipe_; }
  // Ends the busy job (if any) and calls its callback with `status`.
  void finish(Status status);

  // A splice is in the ring: the owner must not be freed yet.
  bool armed() const { return inOp_.armed() || outOp_.armed(); }

 private:
  void onIn(int res, uint32_t) { owner_.onSpliceIn(res); }
  void onOut(int res, uint32_t) { owner_.onSpliceOut(res); }

  uring::Ring& ring_;
  int socketFd_;
  Owner& owner_;
  uring::MemberOp<FileSplicer, &FileSplicer::onIn> inOp_{this};
  uring::MemberOp<FileSplicer, &FileSplicer::onOut> outOp_{this};
  std::unique_ptr<FileJob> job_;
  int pipe_[2] = {-1, -1};
  size_t pipeSize_ = 0;
  size_t inPipe_ = 0;
};

}  // namespace whorl::net
