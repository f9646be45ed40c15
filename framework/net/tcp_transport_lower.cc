// TcpTransport as an api::LowerTransport: what a layer above it (TLS) asks of it beyond
// api::Transport (buffers handed down, the turn-end flush, file reads, read limits, the kernel TLS
// hand-over). The rest of the transport is in tcp_transport.cc; the socket calls of kernel TLS are
// in ktls_socket.cc.
#include "framework/net/tcp_transport.h"

#include <cstring>
#include <optional>
#include <string>

#include "framework/base/ktls_probe.h"
#include "framework/base/tls_wire.h"

namespace whorl::net {

using uring::Ring;

void TcpTransport::writeBuffer(ByteBuffer& bytes) {
  if (state_ != State::kOpen || bytes.empty()) {
    bytes.clear();
    return;
  }
  if (pending_.empty()) {
    // Take the buffer itself (TLS records: no second copy of the ciphertext); the caller gets the
    // empty one to fill next time, so buffers rotate instead of being allocated.
    pending_.swap(bytes);
  } else {
    pending_.append(bytes.view());
  }
  bytes.clear();
  afterWrite();
}

bool TcpTransport::flushBeforeSend(api::TurnFlush* flusher) {
  if (state_ != State::kOpen) return false;
  flusher_ = flusher;
  shard_.scheduleTurnEnd(this);
  return true;
}

void TcpTransport::readFile(int fd, uint64_t offset, size_t length,
                            std::function<void(Result<std::string_view>)> done) {
  if (!fileRead_) fileRead_ = std::make_unique<FileRead>(this);
  FileRead& r = *fileRead_;
  if (r.done) {
    done(Status(Status::Code::kUnavailable, "readFile: a read is already in flight"));
    return;
  }
  if (length > 256 * 1024) length = 256 * 1024;
  r.buf.reset(new char[length]);
  r.done = std::move(done);
  io_uring_sqe* sqe = shard_.ring().sqe();
  io_uring_prep_read(sqe, fd, r.buf.get(), static_cast<unsigned>(length), offset);
  Ring::setOp(sqe, &r.op);
}

void TcpTransport::onFileRead(int res, uint32_t) {
  auto done = std::move(fileRead_->done);
  fileRead_->done = nullptr;
  // The callback may start the next read (into a new buffer): keep this one alive locally.
  std::unique_ptr<char[]> buf = std::move(fileRead_->buf);
  if (state_ == State::kOpen || state_ == State::kDisconnecting) {
    if (res < 0) {
      done(Status::fromErrno(-res, "read file"));
    } else {
      done(std::string_view(buf.get(), static_cast<size_t>(res)));
    }
  }
  maybeFinish();
}

Status TcpTransport::kernelTlsAvailable() const { return kernelTlsSupport(); }

void TcpTransport::setReadLimit(size_t limit) {
  readLimit_ = limit;
  // A multishot receive would read past the limit: stop it (what it already read is delivered).
  if (limit != api::LowerTransport::kNoReadLimit && recvArmed() && !exactArmed()) {
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_cancel(sqe, &recvOp_, 0);
    Ring::setOp(sqe, &cancelOp_);
  }
  if (state_ == State::kOpen) shard_.scheduleTurnEnd(this);
}

void TcpTransport::startKernelTls(api::KernelTlsSetup setup, std::function<void(Status)> done) {
  if (state_ != State::kOpen) {
    done(Status(Status::Code::kAborted, "kernel TLS: the connection is closing"));
    return;
  }
  if (!ktls_) {
    KtlsSocket::Owner& owner = *this;  // a private base: converted here, where it is accessible
    ktls_ = std::make_unique<KtlsSocket>(shard_.ring(), fd_, owner);
  }
  ktls_->start(std::move(setup), std::move(done));
  shard_.scheduleTurnEnd(this);
}

void TcpTransport::installKernelTls() {
  // Every handshake byte is on the wire (no send in flight, nothing pending) and no receive is
  // armed: the kernel starts exactly at the next record in each direction.
  auto done = ktls_->takeDone();
  Status installed = ktls_->install(peer_);
  if (!installed.isOk()) {
    done(std::move(installed));
    return;
  }
  readLimit_ = api::LowerTransport::kNoReadLimit;
  shard_.scheduleTurnEnd(this);
  done(Status::ok());
}

void TcpTransport::onControlRecv(int res) {
  if (res < 0) {
    if (res == -EBADMSG) {
      closeNow(kernelTlsBadRecord(peer_), false);
    } else if (res != -ECANCELED) {
      closeNow(Status::fromErrno(-res, "kernel TLS: recvmsg from " + peer_.toString()), false);
    }
    maybeFinish();
    return;
  }
  if (res == 0) {
    eof_ = true;
  } else {
    KtlsSocket::Record record = ktls_->received(res);
    shard_.stats().bytesIn.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    if (state_ == State::kOpen) {
      if (record.type == tlswire::kApplicationData) {
        receive(record.data);
      } else {
        ktls_->deliverControlRecord(record);
      }
    }
  }
  ktls_->releaseRecvBuffer();  // control records are rare: an idle connection keeps no buffer
  if (state_ != State::kClosing && state_ != State::kClosed) shard_.scheduleTurnEnd(this);
  maybeFinish();
}

void TcpTransport::sendControlRecord(uint8_t type, std::string_view data) {
  if (!ktls_ || !ktls_->tx() || state_ == State::kClosing || state_ == State::kClosed) return;
  ktls_->queue({type, std::string(data), {}, nullptr});
  shard_.scheduleTurnEnd(this);
}

Status TcpTransport::rekeyKernelTlsRx(std::string_view rxInfo) {
  if (!ktls_ || !ktls_->rx()) {
    return Status(Status::Code::kUnavailable, "kernel TLS: not receiving in the kernel");
  }
  return ktls_->rekeyRx(rxInfo);
}

void TcpTransport::rekeyKernelTlsTx(uint8_t type, std::string_view record, std::string txInfo,
                                    std::function<void(Status)> done) {
  if (!ktls_ || !ktls_->tx() || state_ == State::kClosing || state_ == State::kClosed) {
    explicit_bzero(txInfo.data(), txInfo.size());
    done(Status(Status::Code::kUnavailable, "kernel TLS: not sending in the kernel"));
    return;
  }
  ktls_->queue({type, std::string(record), std::move(txInfo), std::move(done)});
  shard_.scheduleTurnEnd(this);
}

void TcpTransport::onControlSend(int res) {
  // Drops the record that was sent and, after our KeyUpdate, installs the next sending key (only
  // when res >= 0, so at most one of the two closes below happens).
  std::optional<KtlsSocket::Rekeyed> rekeyed = ktls_->sent(res);
  if (res < 0 && res != -ECANCELED && state_ != State::kClosing) {
    closeNow(Status::fromErrno(-res, "kernel TLS: sendmsg to " + peer_.toString()), false);
  }
  if (rekeyed) {
    if (!rekeyed->status.isOk()) closeNow(rekeyed->status, false);
    if (rekeyed->done) rekeyed->done(rekeyed->status);
  }
  if (state_ != State::kClosing && state_ != State::kClosed) shard_.scheduleTurnEnd(this);
  maybeFinish();
}

api::TlsMode TcpTransport::tlsMode() const {
  return ktls_ ? ktls_->mode() : api::TlsMode::kNone;
}

}  // namespace whorl::net
