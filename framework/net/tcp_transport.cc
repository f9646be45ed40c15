#include "framework/net/tcp_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "framework/base/log.h"
#include "framework/base/tls_wire.h"
#include "framework/net/pipelined_input.h"

namespace whorl::net {

using uring::Ring;

namespace {
constexpr size_t kExactBufferSize = tlswire::kMaxRecordSize;  // one TLS record at most
}  // namespace

struct TcpTransport::ExactRead {
  explicit ExactRead(TcpTransport* t) : op(t) {}
  uring::MemberOp<TcpTransport, &TcpTransport::onExactRecv> op;
  char buf[kExactBufferSize];
};

bool TcpTransport::exactArmed() const { return exact_ && exact_->op.armed(); }

bool TcpTransport::opsArmed() const {
  return recvOp_.armed() || sendOp_.armed() || cancelOp_.armed() || exactArmed() ||
         (fileRead_ && fileRead_->op.armed()) || (splicer_ && splicer_->armed()) ||
         (ktls_ && ktls_->armed());
}

TcpTransport::TcpTransport(reactor::Shard& shard, int fd, const TransportOptions& options)
    : shard_(shard), fd_(fd), options_(options) {
  peer_ = Address::fromSocketPeer(fd);
  host_ = Address::fromSocketName(fd);
  if (options_.noDelay) {
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  shard_.adopt(this);
  shard_.stats().open.fetch_add(1, std::memory_order_relaxed);
}

TcpTransport::~TcpTransport() {
  if (proxy_) proxy_->timer.cancel();
  if (fd_ >= 0) close(fd_);
}

size_t TcpTransport::bufferedBytes() const {
  size_t n = pending_.size() + sending_.size() + (splicer_ ? splicer_->inPipe() : 0);
  for (const auto& item : queue_) n += item.bytes.size();
  return n;
}

void TcpTransport::sendFile(int fd, uint64_t offset, uint64_t length,
                            std::function<void(Status)> done) {
  if (state_ != State::kOpen) {
    done(Status(Status::Code::kAborted, "sendFile: the connection is closing"));
    return;
  }
  if (length == 0) {
    done(Status::ok());
    return;
  }
  // What was written before goes first; what is written after waits behind the file.
  if (!pending_.empty()) {
    OutItem before;
    before.bytes.swap(pending_);
    queue_.push_back(std::move(before));
  }
  OutItem item;
  item.file.reset(new FileJob{fd, offset, length, std::move(done)});
  queue_.push_back(std::move(item));
  shard_.scheduleTurnEnd(this);
}

void TcpTransport::startFile() {
  // Splice file pages through a pipe to the socket: no copy through user space, and over kernel
  // TLS the kernel encrypts them.
  if (!splicer_) {
    FileSplicer::Owner& owner = *this;  // a private base: converted here, where it is accessible
    splicer_ = std::make_unique<FileSplicer>(shard_.ring(), fd_, owner);
  }
  Status pipe = splicer_->begin(std::move(queue_.front().file));
  queue_.pop_front();
  if (!pipe.isOk()) {
    finishFile(pipe);
    closeNow(pipe, false);
    return;
  }
  spliceNext();
}

void TcpTransport::spliceNext() {
  splicer_->spliceNext();
  sendTimeout_.sendStarted();
}

void TcpTransport::onSpliceIn(int res) {
  if (state_ == State::kClosing || state_ == State::kClosed) {
    maybeFinish();
    return;
  }
  if (res <= 0) {
    Status why = res == 0 ? api::fileEndedEarly(splicer_->remaining())
                          : Status::fromErrno(-res, "sendFile: splice from the file");
    finishFile(why);
    closeNow(why, false);
    maybeFinish();
    return;
  }
  splicer_->filled(static_cast<size_t>(res));
  spliceNext();
}

void TcpTransport::onSpliceOut(int res) {
  if (res < 0) {
    if (res != -ECANCELED || state_ == State::kOpen) {
      Status why = Status::fromErrno(-res, "sendFile: splice to " + peer_.toString());
      finishFile(why);
      closeNow(why, false);
    }
    maybeFinish();
    return;
  }
  shard_.stats().bytesOut.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
  splicer_->drained(static_cast<size_t>(res));
  if (state_ == State::kClosing || state_ == State::kClosed) {
    maybeFinish();
    return;
  }
  if (splicer_->more()) {
    spliceNext();
    return;
  }
  finishFile(Status::ok());
  startSend();
  maybeResumeProducer();
  if (state_ == State::kDisconnecting) shard_.scheduleTurnEnd(this);
}

void TcpTransport::finishFile(Status status) {
  if (splicer_) splicer_->finish(std::move(status));
}

void TcpTransport::start(std::unique_ptr<api::Protocol> protocol) {
  if (!protocol) {
    closeNow(Status(Status::Code::kRefused, "the factory refused the connection"), false);
    return;
  }
  protocol_ = std::move(protocol);
  protocol_->makeConnection(this);
  if (state_ == State::kOpen || state_ == State::kDisconnecting) shard_.scheduleTurnEnd(this);
}

void TcpTransport::startAfterProxyHeader(std::shared_ptr<api::Factory> factory) {
  proxy_ = std::make_unique<ProxyWait>(options_.proxyProtocol);
  proxy_->factory = std::move(factory);
  auto timeout = options_.proxyHeaderTimeout;
  proxy_->timer = shard_.callLater(timeout, [this, timeout] {
    failProxyHeader(Status(Status::Code::kTimeout,
                           "no complete PROXY protocol header within " +
                               std::to_string(timeout.count()) + " ms"));
  });
  shard_.scheduleTurnEnd(this);  // arms the receive
}

void TcpTransport::receiveProxyHeader(std::string_view data) {
  proxy_->received += data.size();
  auto progress = proxy_->parser.feed(data);
  if (!progress) {
    failProxyHeader(progress.status());
    return;
  }
  if (progress->needMore()) return;
  const ProxyHeader& header = *progress->header;
  // LOCAL (a proxy's own health check) keeps the socket's addresses.
  if (!header.local && header.source) peer_ = *header.source;
  proxy_->timer.cancel();
  std::shared_ptr<api::Factory> factory = std::move(proxy_->factory);
  size_t consumed = progress->consumed;
  proxy_.reset();
  auto protocol = factory->build(peer_);
  if (!protocol) shard_.stats().refused.fetch_add(1, std::memory_order_relaxed);
  start(std::move(protocol));
  if (state_ == State::kOpen && consumed < data.size()) receive(data.substr(consumed));
}

void TcpTransport::failProxyHeader(Status reason) {
  if (!proxy_) return;
  proxy_->timer.cancel();
  if (state_ != State::kOpen) return;
  shard_.stats().proxyErrors.fetch_add(1, std::memory_order_relaxed);
  WHORL_LOG(kInfo, "closing connection from %s: %s", peer_.toString().c_str(),
            reason.message().c_str());
  closeNow(std::move(reason), false);
}

void TcpTransport::armRecv() {
  if (readLimit_ == 0) return;
  if (readLimit_ != api::LowerTransport::kNoReadLimit) {
    if (!exact_) exact_ = std::make_unique<ExactRead>(this);
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_recv(sqe, fd_, exact_->buf, std::min(readLimit_, kExactBufferSize), 0);
    Ring::setOp(sqe, &exact_->op);
    return;
  }
  io_uring_sqe* sqe = shard_.ring().sqe();
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = shard_.buffers().groupId();
  Ring::setOp(sqe, &recvOp_);
}

void TcpTransport::onRecv(int res, uint32_t flags) {
  if (res > 0) {
    uint16_t bid = uring::ProvidedBufferRing::bufferId(flags);
    std::string_view data = shard_.buffers().view(bid, static_cast<size_t>(res));
    shard_.stats().bytesIn.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    // Count these bytes against the limit in force when they were read, before delivering them:
    // delivery may set a new limit (startTLS from dataReceived), which they must not use up.
    consumeReadLimit(static_cast<size_t>(res));
    if (state_ == State::kOpen) {
      receive(data);
    }
    shard_.buffers().recycle(bid);
  } else if (res == 0) {
    // The peer finished sending. Once everything it sent is delivered (held_ may still have
    // bytes from a pause), send what is pending and close: no byte is lost either way.
    eof_ = true;
  } else if (res == -ENOBUFS) {
    shard_.stats().recvRearms.fetch_add(1, std::memory_order_relaxed);
  } else if (res == -EIO && ktls_ && ktls_->rx()) {
    // Kernel TLS: the next record is not application data; read it with its type.
    ktls_->armControlRecv();
  } else if (res == -EBADMSG && ktls_ && ktls_->rx()) {
    closeNow(kernelTlsBadRecord(peer_), false);
  } else if (res != -ECANCELED) {
    closeNow(Status::fromErrno(-res, "recv from " + peer_.toString()), false);
  }
  if (state_ != State::kClosing && state_ != State::kClosed) shard_.scheduleTurnEnd(this);
  maybeFinish();
}

void TcpTransport::consumeReadLimit(size_t n) {
  if (readLimit_ == api::LowerTransport::kNoReadLimit) return;
  readLimit_ = n >= readLimit_ ? 0 : readLimit_ - n;
}

void TcpTransport::onExactRecv(int res, uint32_t) {
  if (res > 0) {
    shard_.stats().bytesIn.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    consumeReadLimit(static_cast<size_t>(res));
    std::string_view data(exact_->buf, static_cast<size_t>(res));
    if (state_ == State::kOpen) {
      receive(data);
    }
  } else if (res == 0) {
    eof_ = true;
  } else if (res != -ECANCELED) {
    closeNow(Status::fromErrno(-res, "recv from " + peer_.toString()), false);
  }
  if (state_ != State::kClosing && state_ != State::kClosed) shard_.scheduleTurnEnd(this);
  maybeFinish();
}

void TcpTransport::receive(std::string_view data) {
  if (proxy_) {
    receiveProxyHeader(data);
    return;
  }
  // While reading is paused (or earlier bytes still wait), keep order: hold, deliver later.
  if (readingPaused_ || !held_.empty()) {
    held_.append(data);
  } else {
    deliver(data);
  }
}

void TcpTransport::deliver(std::string_view data) {
  if (protocol_) protocol_->dataReceived(data);
}

void TcpTransport::write(std::string_view data) {
  if (state_ != State::kOpen || data.empty()) return;
  pending_.append(data);
  afterWrite();
}

void TcpTransport::writeSequence(std::span<const std::string_view> parts) {
  if (state_ != State::kOpen) return;
  for (auto p : parts) pending_.append(p);
  afterWrite();
}

void TcpTransport::afterWrite() {
  // A layer flushing at this turn end (onTurnEnd) is followed by startSend() there already.
  if (!inFlush_) shard_.scheduleTurnEnd(this);
  if (!producerPaused_ && bufferedBytes() > options_.highWater) {
    producerPaused_ = true;
    if (protocol_) protocol_->pauseProducing();
  }
}

void TcpTransport::startSend() {
  if (sendInFlight() || state_ == State::kClosing || state_ == State::kClosed) return;
  if (sending_.empty() && pending_.empty() && queue_.empty() && !fileBusy() && ktls_ &&
      ktls_->hasOutgoing()) {
    // A control record (an alert, our KeyUpdate) after everything written before it.
    ktls_->sendNext();
    sendTimeout_.sendStarted();
    return;
  }
  if (sending_.empty() && !queue_.empty()) {
    if (queue_.front().file) {
      startFile();
      return;
    }
    sending_.swap(queue_.front().bytes);
    queue_.pop_front();
  }
  if (sending_.empty()) {
    if (pending_.empty()) return;
    sending_.swap(pending_);
  }
  if (quietSendFits()) {
    shard_.ring().prepSendQuiet(&sendOp_, fd_, sending_.data(),
                                static_cast<unsigned>(sending_.size()), MSG_NOSIGNAL);
  } else {
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_send(sqe, fd_, sending_.data(), sending_.size(), MSG_NOSIGNAL);
    Ring::setOp(sqe, &sendOp_);
  }
  sendTimeout_.sendStarted();
}

bool TcpTransport::quietSendFits() const {
  // A quiet send ends with no completion when it sent everything, so the shard's wait goes on
  // until the next event and the send is settled then (Ring, "Quiet sends"). That is right only
  // when nothing here waits for it: no closing or kernel TLS hand-over waiting for the drain, no
  // paused producer, no more bytes queued behind it. After a short send the socket buffer is
  // full: the next send waits for room as usual. Kernel TLS sockets refuse MSG_WAITALL.
  return shard_.ring().quietSends() && !lastSendShort_ && !sendCompletionAwaited() &&
         sending_.size() <= kMaxQuietSend;
}

bool TcpTransport::sendCompletionAwaited() const {
  return state_ != State::kOpen || eof_ || ktls_ || producerPaused_ || !pending_.empty() ||
         !queue_.empty();
}

bool TcpTransport::sendWaiting() const {
  return sendInFlight() && state_ != State::kClosing && state_ != State::kClosed;
}

void TcpTransport::sendTimedOut(Status reason) { closeNow(std::move(reason), true); }

void TcpTransport::onSend(int res, uint32_t) {
  // A quiet send that found no room at all (Ring::prepSendQuiet): nothing was sent.
  if (res == -EAGAIN) res = 0;
  if (res >= 0) {
    lastSendShort_ = static_cast<size_t>(res) < sending_.size();
    shard_.stats().bytesOut.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    sending_.consume(static_cast<size_t>(res));
    // Drained: give the buffer back. An idle connection then holds no send buffer (1-2 KiB each
    // after a TLS handshake, 7% of an idle TLS connection's memory); a busy one pays one
    // small allocation per response, which glibc's thread cache serves in tens of nanoseconds.
    if (sending_.empty()) sending_.release();
    startSend();
    maybeResumeProducer();
    // Closing, or a kernel TLS hand-over, waits for the send side to drain.
    if (state_ == State::kDisconnecting || (ktls_ && ktls_->pending())) {
      shard_.scheduleTurnEnd(this);
    }
  } else if (res != -ECANCELED || state_ == State::kOpen) {
    closeNow(Status::fromErrno(-res, "send to " + peer_.toString()), false);
  }
  maybeFinish();
}

void TcpTransport::maybeResumeProducer() {
  if (producerPaused_ && bufferedBytes() <= options_.lowWater && state_ == State::kOpen) {
    producerPaused_ = false;
    if (protocol_) protocol_->resumeProducing();
  }
}

void TcpTransport::onTurnEnd() {
  if (state_ == State::kClosing) {
    if (!opsArmed()) finish();
    return;
  }
  if (state_ == State::kClosed) return;
  if (state_ == State::kOpen && !readingPaused_ && !held_.empty()) {
    ByteBuffer held;
    held.swap(held_);
    deliver(held.view());
  }
  if (flusher_ != nullptr) {
    // The layer's writes of this turn (TLS: encrypted into records), before the checks below stop
    // taking writes and before startSend().
    api::TurnFlush* flusher = flusher_;
    flusher_ = nullptr;
    if (state_ == State::kOpen) {
      inFlush_ = true;
      flusher->flushBeforeSend();
      inFlush_ = false;
    }
  }
  if (state_ == State::kOpen && eof_ && proxy_ && proxy_->received > 0) {
    // Part of a header, then the end: a broken or misconfigured proxy. (Nothing at all, then
    // the end, is a load balancer's TCP health check: not an error.)
    failProxyHeader(Status(Status::Code::kConnectionLost,
                           "the connection ended after " + std::to_string(proxy_->received) +
                               " bytes of an incomplete PROXY protocol header"));
    return;
  }
  if (state_ == State::kOpen && eof_ && held_.empty()) {
    reason_ = Status::connectionDone();
    state_ = State::kDisconnecting;
  }
  startSend();
  // A quiet send still out, and something now waits for it (bytes written behind it later in
  // this turn, a close): the shard must not sleep on it.
  if (sendOp_.quiet() && sendCompletionAwaited()) shard_.ring().settleSoon();
  // Exact reads are over (they happen only during TLS handshakes): free their buffer here, never
  // while a delivery from it may still be on the stack.
  if (exact_ && !exactArmed() && readLimit_ == api::LowerTransport::kNoReadLimit) exact_.reset();
  auto outputIdle = [this] {
    return !sendInFlight() && bufferedBytes() == 0 && queue_.empty() && !fileBusy();
  };
  if (ktls_ && ktls_->pending() && state_ == State::kOpen && outputIdle() && !recvArmed()) {
    installKernelTls();
    if (state_ == State::kClosing || state_ == State::kClosed) return;
  }
  if (state_ == State::kOpen && !readingPaused_ && !recvArmed() && !eof_ &&
      !(ktls_ && (ktls_->pending() || ktls_->controlRecvArmed()))) {
    armRecv();
  }
  if (state_ == State::kDisconnecting && outputIdle() && !(ktls_ && ktls_->hasOutgoing())) {
    // Everything was sent: half-close so the peer sees EOF after the last byte, then close.
    shutdown(fd_, SHUT_WR);
    closeNow(reason_.isOk() ? Status::connectionDone() : reason_, false);
  }
}

Status TcpTransport::startTLS(std::shared_ptr<const api::TlsUpgrade> tls,
                              api::StartTLSOptions options) {
  if (!tls) return Status::invalidArgument("startTLS: no TLS options");
  // Options whose build failed (tls::TLSOptions keeps the reason): say why, change nothing.
  if (Status built = tls->status(); !built.isOk()) return built;
  if (state_ != State::kOpen) {
    return Status::invalidArgument("startTLS: the connection is already closing");
  }
  if (tlsStarted_) return Status::invalidArgument("startTLS: this connection already uses TLS");
  bool tlsClient = outgoing_ == options.normal;
  if (tls->actsAsClient() != tlsClient) {
    return Status::invalidArgument(
        std::string("startTLS: this side acts as TLS ") + (tlsClient ? "client" : "server") + " (" +
        (outgoing_ ? "outgoing" : "accepted") + " connection, normal=" +
        (options.normal ? "true" : "false") + ") but was given " +
        (tls->actsAsClient() ? "client options (optionsForClientTLS)"
                             : "server options (CertificateOptions)"));
  }
  // Everything received but not yet processed belongs after the trigger.
  std::string early = PipelinedInputPolicy::takeEarlyInput(*protocol_, held_);
  tlsStarted_ = true;
  protocol_ = tls->wrapForStartTLS(std::move(protocol_), std::move(options.onHandshake));
  protocol_->makeConnection(this);
  PipelinedInputPolicy policy(options.pipelined, {.tlsClient = tlsClient, .outgoing = outgoing_});
  Result<std::string> forTls = policy.apply(std::move(early), peer_);
  if (!forTls) {
    // kReject: what was written before startTLS (the go-ahead) is still sent, then the
    // connection closes; nothing that arrived is ever delivered.
    reason_ = forTls.status();
    state_ = State::kDisconnecting;
    shard_.scheduleTurnEnd(this);
  } else if (!forTls->empty()) {
    // kUseAsTls: fed to the TLS layer at the end of this turn, ahead of anything received later.
    held_.append(*forTls);
    shard_.scheduleTurnEnd(this);
  }
  return Status::ok();
}

void TcpTransport::pauseProducing() {
  if (readingPaused_) return;
  readingPaused_ = true;
  if (recvArmed()) {
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_cancel(sqe, &recvOp_, 0);
    Ring::setOp(sqe, &cancelOp_);
  }
}

void TcpTransport::resumeProducing() {
  if (!readingPaused_) return;
  readingPaused_ = false;
  if (state_ == State::kOpen) shard_.scheduleTurnEnd(this);
}

void TcpTransport::loseConnection() {
  if (state_ != State::kOpen) return;
  state_ = State::kDisconnecting;
  reason_ = Status::connectionDone();
  shard_.scheduleTurnEnd(this);
}

void TcpTransport::abortConnection() {
  closeNow(Status(Status::Code::kAborted, "connection aborted"), true);
}

void TcpTransport::onShutdown(ShutdownPhase phase) {
  switch (phase) {
    case ShutdownPhase::kStopAccepting:
      // Open connections may finish on their own; the protocol learns when they will be closed.
      if (state_ == State::kOpen && protocol_) protocol_->stopRequested(shard_.drainDeadline());
      break;
    case ShutdownPhase::kClose:
      loseConnection();
      break;
    case ShutdownPhase::kAbort:
      closeNow(Status(Status::Code::kAborted, "server shutting down: drain deadline passed"), true);
      break;
  }
}

void TcpTransport::closeNow(Status reason, bool reset) {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  state_ = State::kClosing;
  reason_ = std::move(reason);
  resetOnClose_ = reset;
  sendTimeout_.stop();
  if (recvArmed() || sendInFlight() || (ktls_ && ktls_->controlRecvArmed())) {
    // Cancel every op on this socket; the socket itself is closed after the last completion, so
    // the fd number cannot be reused while a cancel or op still refers to it.
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
    Ring::setOp(sqe, &cancelOp_);
  }
  maybeFinish();
}

void TcpTransport::onCancel(int, uint32_t) { maybeFinish(); }

void TcpTransport::maybeFinish() {
  // connectionLost runs at the end of the turn, never inside the protocol's own call.
  if (state_ == State::kClosing && !opsArmed()) shard_.scheduleTurnEnd(this);
}

void TcpTransport::finish() {
  state_ = State::kClosed;
  if (resetOnClose_) {
    linger lg{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
  close(fd_);
  fd_ = -1;
  pending_.release();
  sending_.release();
  finishFile(reason_.isOk() ? Status(Status::Code::kAborted, "connection closed") : reason_);
  for (auto& item : queue_) {
    if (item.file && item.file->done) {
      item.file->done(Status(Status::Code::kAborted, "sendFile: the connection closed first"));
    }
  }
  queue_.clear();
  held_.release();
  shard_.stats().open.fetch_sub(1, std::memory_order_relaxed);
  shard_.stats().closed.fetch_add(1, std::memory_order_relaxed);
  if (protocol_) protocol_->deliverConnectionLost(reason_);
  shard_.release(this);
}

}  // namespace whorl::net
