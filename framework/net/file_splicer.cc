#include "framework/net/file_splicer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace whorl::net {

FileSplicer::FileSplicer(uring::Ring& ring, int socketFd, Owner& owner)
    : ring_(ring), socketFd_(socketFd), owner_(owner) {}

FileSplicer::~FileSplicer() {
  for (int p : pipe_) {
    if (p >= 0) close(p);
  }
}

Status FileSplicer::begin(std::unique_ptr<FileJob> job) {
  job_ = std::move(job);
  if (pipe_[0] >= 0) return Status::ok();
  if (pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return Status::fromErrno(errno, "sendFile: pipe");
  // 1 MiB moves more per splice. If refused (above pipe-max-size, unprivileged), the default
  // 64 KiB stays.
  int size = fcntl(pipe_[1], F_SETPIPE_SZ, 1 << 20);
  pipeSize_ = size > 0 ? static_cast<size_t>(size) : 65536;
  return Status::ok();
}

void FileSplicer::spliceNext() {
  FileJob& f = *job_;
  if (inPipe_ > 0) {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_splice(sqe, pipe_[0], -1, socketFd_, -1, static_cast<unsigned>(inPipe_), 0);
    uring::Ring::setOp(sqe, &outOp_);
  } else {
    size_t n = f.remaining < pipeSize_ ? static_cast<size_t>(f.remaining) : pipeSize_;
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_splice(sqe, f.fd, static_cast<int64_t>(f.offset), pipe_[1], -1,
                         static_cast<unsigned>(n), 0);
    uring::Ring::setOp(sqe, &inOp_);
  }
}

void FileSplicer::filled(size_t n) {
  inPipe_ = n;
  job_->offset += static_cast<uint64_t>(n);
  job_->remaining -= static_cast<uint64_t>(n);
}

void FileSplicer::finish(Status status) {
  if (!job_) return;
  auto done = std::move(job_->done);
  job_.reset();
  if (done) done(std::move(status));
}

}  // namespace whorl::net
