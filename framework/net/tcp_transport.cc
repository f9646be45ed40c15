#include "framework/net/tcp_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>
#include <linux/tls.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fcntl.h>

#include <list>

#include "framework/base/log.h"
#include "framework/base/ktls_probe.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace whorl::net {

using uring::Ring;

namespace {
constexpr size_t kExactBufferSize = 16384 + 512;  // one TLS record at most
constexpr size_t kControlBufferSize = 16384 + 512;
}  // namespace

struct TcpTransport::KernelTlsState {
  explicit KernelTlsState(TcpTransport* t) : controlRecvOp(t), controlSendOp(t) {}
  uring::MemberOp<TcpTransport, &TcpTransport::onControlRecv> controlRecvOp;
  uring::MemberOp<TcpTransport, &TcpTransport::onControlSend> controlSendOp;
  api::KernelTlsSetup setup;
  std::function<void(Status)> done;
  bool pending = false;  // waiting for the send side to drain
  bool tx = false;
  bool rx = false;
  bool controlArmed = false;
  bool controlSendInFlight = false;
  // recvmsg of a record that is not application data (the kernel reports its type in a cmsg).
  msghdr recvMsg{};
  iovec recvIov{};
  std::unique_ptr<char[]> recvData;  // only while such a recvmsg is armed (idle: no buffer)
  char recvCmsg[CMSG_SPACE(sizeof(unsigned char))];
  // sendmsg of our own control records (alerts), in order after the data written before them.
  struct Outgoing {
    uint8_t type;
    std::string data;
    std::string txInfoAfter;  // KeyUpdate: the next sending key, installed once this is sent
    std::function<void(Status)> done;
  };
  std::list<Outgoing> outgoing;  // (a list: an empty deque allocates)
  msghdr sendMsg{};
  iovec sendIov{};
  char sendCmsg[CMSG_SPACE(sizeof(unsigned char))];
};

struct TcpTransport::ExactRead {
  explicit ExactRead(TcpTransport* t) : op(t) {}
  uring::MemberOp<TcpTransport, &TcpTransport::onExactRecv> op;
  char buf[kExactBufferSize];
};

struct TcpTransport::FileIo {
  explicit FileIo(TcpTransport* t) : spliceInOp(t), spliceOutOp(t), readOp(t) {}
  ~FileIo() {
    for (int p : pipe) {
      if (p >= 0) close(p);
    }
  }
  uring::MemberOp<TcpTransport, &TcpTransport::onSpliceIn> spliceInOp;
  uring::MemberOp<TcpTransport, &TcpTransport::onSpliceOut> spliceOutOp;
  uring::MemberOp<TcpTransport, &TcpTransport::onFileRead> readOp;
  int pipe[2] = {-1, -1};
  size_t pipeSize = 0;
  size_t inPipe = 0;  // bytes spliced into the pipe, not yet out to the socket
  std::unique_ptr<char[]> readBuf;
  std::function<void(Result<std::string_view>)> readDone;
};

TcpTransport::FileIo& TcpTransport::fileIo() {
  if (!fileIo_) fileIo_ = std::make_unique<FileIo>(this);
  return *fileIo_;
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
  if (sendTimerArmed_) sendTimer_.cancel();
  if (fd_ >= 0) close(fd_);
}

size_t TcpTransport::bufferedBytes() const {
  size_t n = pending_.size() + sending_.size() + (fileIo_ ? fileIo_->inPipe : 0);
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

void TcpTransport::spliceNext() {
  FileJob& f = *file_;
  FileIo& io = *fileIo_;
  if (io.inPipe > 0) {
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_splice(sqe, io.pipe[0], -1, fd_, -1, static_cast<unsigned>(io.inPipe), 0);
    Ring::setOp(sqe, &io.spliceOutOp);
  } else {
    size_t n = f.remaining < io.pipeSize ? static_cast<size_t>(f.remaining) : io.pipeSize;
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_splice(sqe, f.fd, static_cast<int64_t>(f.offset), io.pipe[1], -1,
                         static_cast<unsigned>(n), 0);
    Ring::setOp(sqe, &io.spliceInOp);
  }
  sendInFlight_ = true;
  ++inflight_;
  sendStarted();
}

void TcpTransport::onSpliceIn(int res, uint32_t) {
  sendInFlight_ = false;
  --inflight_;
  if (state_ == State::kClosing || state_ == State::kClosed) {
    maybeFinish();
    return;
  }
  if (res <= 0) {
    Status why = res == 0 ? api::fileEndedEarly(file_->remaining)
                          : Status::fromErrno(-res, "sendFile: splice from the file");
    finishFile(why);
    closeNow(why, false);
    maybeFinish();
    return;
  }
  fileIo_->inPipe = static_cast<size_t>(res);
  file_->offset += static_cast<uint64_t>(res);
  file_->remaining -= static_cast<uint64_t>(res);
  spliceNext();
}

void TcpTransport::onSpliceOut(int res, uint32_t) {
  sendInFlight_ = false;
  --inflight_;
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
  fileIo_->inPipe -= static_cast<size_t>(res);
  if (state_ == State::kClosing || state_ == State::kClosed) {
    maybeFinish();
    return;
  }
  if (fileIo_->inPipe > 0 || file_->remaining > 0) {
    spliceNext();
    return;
  }
  finishFile(Status::ok());
  startSend();
  if (producerPaused_ && bufferedBytes() <= options_.lowWater && state_ == State::kOpen) {
    producerPaused_ = false;
    if (protocol_) protocol_->resumeProducing();
  }
  if (state_ == State::kDisconnecting) shard_.scheduleTurnEnd(this);
}

void TcpTransport::finishFile(Status status) {
  if (!file_) return;
  auto done = std::move(file_->done);
  file_.reset();
  if (done) done(std::move(status));
}

void TcpTransport::readFile(int fd, uint64_t offset, size_t length,
                            std::function<void(Result<std::string_view>)> done) {
  FileIo& io = fileIo();
  if (io.readDone) {
    done(Status(Status::Code::kUnavailable, "readFile: a read is already in flight"));
    return;
  }
  if (length > 256 * 1024) length = 256 * 1024;
  io.readBuf.reset(new char[length]);
  io.readDone = std::move(done);
  io_uring_sqe* sqe = shard_.ring().sqe();
  io_uring_prep_read(sqe, fd, io.readBuf.get(), static_cast<unsigned>(length), offset);
  Ring::setOp(sqe, &io.readOp);
  ++inflight_;
}

void TcpTransport::onFileRead(int res, uint32_t) {
  --inflight_;
  auto done = std::move(fileIo_->readDone);
  fileIo_->readDone = nullptr;
  // The callback may start the next read (into a new buffer): keep this one alive locally.
  std::unique_ptr<char[]> buf = std::move(fileIo_->readBuf);
  if (state_ == State::kOpen || state_ == State::kDisconnecting) {
    if (res < 0) {
      done(Status::fromErrno(-res, "read file"));
    } else {
      done(std::string_view(buf.get(), static_cast<size_t>(res)));
    }
  }
  maybeFinish();
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
    recvArmed_ = true;
    exactArmed_ = true;
    ++inflight_;
    return;
  }
  io_uring_sqe* sqe = shard_.ring().sqe();
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = shard_.buffers().groupId();
  Ring::setOp(sqe, &recvOp_);
  recvArmed_ = true;
  ++inflight_;
}

void TcpTransport::onRecv(int res, uint32_t flags) {
  if (!(flags & IORING_CQE_F_MORE)) {
    recvArmed_ = false;
    --inflight_;
  }
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
  } else if (res == -EIO && ktls_ && ktls_->rx) {
    // Kernel TLS: the next record is not application data; read it with its type.
    armControlRecv();
  } else if (res == -EBADMSG && ktls_ && ktls_->rx) {
    closeNow(Status(Status::Code::kTls, "kernel TLS: a record from " + peer_.toString() +
                                            " failed authentication (bad record MAC): corrupted or forged"),
             false);
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
  recvArmed_ = false;
  exactArmed_ = false;
  --inflight_;
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

Status TcpTransport::kernelTlsAvailable() const { return kernelTlsSupport(); }

void TcpTransport::setReadLimit(size_t limit) {
  readLimit_ = limit;
  // A multishot receive would read past the limit: stop it (what it already read is delivered).
  if (limit != api::LowerTransport::kNoReadLimit && recvArmed_ && !exactArmed_) {
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_cancel(sqe, &recvOp_, 0);
    Ring::setOp(sqe, &cancelOp_);
    ++inflight_;
  }
  if (state_ == State::kOpen) shard_.scheduleTurnEnd(this);
}

void TcpTransport::startKernelTls(api::KernelTlsSetup setup, std::function<void(Status)> done) {
  if (state_ != State::kOpen) {
    done(Status(Status::Code::kAborted, "kernel TLS: the connection is closing"));
    return;
  }
  if (!ktls_) ktls_ = std::make_unique<KernelTlsState>(this);
  ktls_->setup = std::move(setup);
  ktls_->done = std::move(done);
  ktls_->pending = true;
  shard_.scheduleTurnEnd(this);
}

void TcpTransport::installKernelTls() {
  // Every handshake byte is on the wire (no send in flight, nothing pending) and no receive is
  // armed: the kernel starts exactly at the next record in each direction.
  KernelTlsState& k = *ktls_;
  k.pending = false;
  auto done = std::move(k.done);
  k.done = nullptr;
  if (setsockopt(fd_, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
    done(Status::fromErrno(errno, "kernel TLS: setsockopt TCP_ULP tls"));
    return;
  }
  if (setsockopt(fd_, SOL_TLS, TLS_TX, k.setup.txInfo.data(),
                 static_cast<socklen_t>(k.setup.txInfo.size())) != 0) {
    done(Status::fromErrno(errno, "kernel TLS: setsockopt TLS_TX"));
    return;
  }
  k.tx = true;
  if (!k.setup.rxInfo.empty()) {
    if (setsockopt(fd_, SOL_TLS, TLS_RX, k.setup.rxInfo.data(),
                   static_cast<socklen_t>(k.setup.rxInfo.size())) == 0) {
      k.rx = true;
    } else {
      WHORL_LOG(kInfo, "kernel TLS: RX refused for %s (%s); receiving stays in userspace",
                peer_.toString().c_str(), strerror(errno));
    }
  }
  // Keys are wiped from our copy once the kernel has them.
  explicit_bzero(k.setup.txInfo.data(), k.setup.txInfo.size());
  explicit_bzero(k.setup.rxInfo.data(), k.setup.rxInfo.size());
  readLimit_ = api::LowerTransport::kNoReadLimit;
  shard_.scheduleTurnEnd(this);
  done(Status::ok());
}

void TcpTransport::armControlRecv() {
  KernelTlsState& k = *ktls_;
  if (k.controlArmed) return;
  if (!k.recvData) k.recvData.reset(new char[kControlBufferSize]);
  k.recvIov = {k.recvData.get(), kControlBufferSize};
  k.recvMsg = {};
  k.recvMsg.msg_iov = &k.recvIov;
  k.recvMsg.msg_iovlen = 1;
  k.recvMsg.msg_control = k.recvCmsg;
  k.recvMsg.msg_controllen = sizeof(k.recvCmsg);
  io_uring_sqe* sqe = shard_.ring().sqe();
  io_uring_prep_recvmsg(sqe, fd_, &k.recvMsg, 0);
  Ring::setOp(sqe, &k.controlRecvOp);
  k.controlArmed = true;
  ++inflight_;
}

void TcpTransport::onControlRecv(int res, uint32_t) {
  --inflight_;
  KernelTlsState& k = *ktls_;
  k.controlArmed = false;
  if (res < 0) {
    if (res == -EBADMSG) {
      closeNow(Status(Status::Code::kTls, "kernel TLS: a record from " + peer_.toString() +
                                              " failed authentication (bad record MAC): corrupted or forged"),
               false);
    } else if (res != -ECANCELED) {
      closeNow(Status::fromErrno(-res, "kernel TLS: recvmsg from " + peer_.toString()), false);
    }
    maybeFinish();
    return;
  }
  if (res == 0) {
    eof_ = true;
  } else {
    unsigned char type = 23;
    for (cmsghdr* c = CMSG_FIRSTHDR(&k.recvMsg); c != nullptr; c = CMSG_NXTHDR(&k.recvMsg, c)) {
      if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE) {
        type = *CMSG_DATA(c);
      }
    }
    std::string_view data(k.recvData.get(), static_cast<size_t>(res));
    shard_.stats().bytesIn.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    if (state_ == State::kOpen) {
      if (type == 23) {
        receive(data);
      } else if (k.setup.onControlRecord) {
        k.setup.onControlRecord(type, data);
      }
    }
  }
  k.recvData.reset();  // control records are rare: an idle connection keeps no buffer for them
  if (state_ != State::kClosing && state_ != State::kClosed) shard_.scheduleTurnEnd(this);
  maybeFinish();
}

void TcpTransport::sendControlRecord(uint8_t type, std::string_view data) {
  if (!ktls_ || !ktls_->tx || state_ == State::kClosing || state_ == State::kClosed) return;
  ktls_->outgoing.push_back({type, std::string(data), {}, nullptr});
  shard_.scheduleTurnEnd(this);
}

Status TcpTransport::rekeyKernelTlsRx(std::string_view rxInfo) {
  if (!ktls_ || !ktls_->rx) {
    return Status(Status::Code::kUnavailable, "kernel TLS: not receiving in the kernel");
  }
  int rc = setsockopt(fd_, SOL_TLS, TLS_RX, rxInfo.data(), static_cast<socklen_t>(rxInfo.size()));
  if (rc != 0) return Status::fromErrno(errno, "kernel TLS: setsockopt TLS_RX (new key)");
  return Status::ok();
}

void TcpTransport::rekeyKernelTlsTx(uint8_t type, std::string_view record, std::string txInfo,
                                    std::function<void(Status)> done) {
  if (!ktls_ || !ktls_->tx || state_ == State::kClosing || state_ == State::kClosed) {
    explicit_bzero(txInfo.data(), txInfo.size());
    done(Status(Status::Code::kUnavailable, "kernel TLS: not sending in the kernel"));
    return;
  }
  ktls_->outgoing.push_back({type, std::string(record), std::move(txInfo), std::move(done)});
  shard_.scheduleTurnEnd(this);
}

void TcpTransport::onControlSend(int res, uint32_t) {
  --inflight_;
  sendInFlight_ = false;
  ktls_->controlSendInFlight = false;
  KernelTlsState::Outgoing sent;
  if (!ktls_->outgoing.empty()) {
    sent = std::move(ktls_->outgoing.front());
    ktls_->outgoing.pop_front();
  }
  if (res < 0 && res != -ECANCELED && state_ != State::kClosing) {
    closeNow(Status::fromErrno(-res, "kernel TLS: sendmsg to " + peer_.toString()), false);
  }
  if (res >= 0 && !sent.txInfoAfter.empty()) {
    // Our KeyUpdate went out under the old key; nothing has been sent after it (one send in
    // flight at a time), so the new key starts exactly at the next record.
    Status s;
    if (setsockopt(fd_, SOL_TLS, TLS_TX, sent.txInfoAfter.data(),
                   static_cast<socklen_t>(sent.txInfoAfter.size())) != 0) {
      s = Status::fromErrno(errno, "kernel TLS: setsockopt TLS_TX (new key)");
    }
    explicit_bzero(sent.txInfoAfter.data(), sent.txInfoAfter.size());
    if (!s.isOk()) closeNow(s, false);
    if (sent.done) sent.done(s);
  }
  if (state_ != State::kClosing && state_ != State::kClosed) shard_.scheduleTurnEnd(this);
  maybeFinish();
}

api::TlsMode TcpTransport::tlsMode() const {
  if (ktls_ && ktls_->tx && ktls_->rx) return api::TlsMode::kKernelTxRx;
  if (ktls_ && ktls_->tx) return api::TlsMode::kKernelTx;
  return api::TlsMode::kNone;
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

void TcpTransport::afterWrite() {
  // A layer flushing at this turn end (onTurnEnd) is followed by startSend() there already.
  if (!inFlush_) shard_.scheduleTurnEnd(this);
  if (!producerPaused_ && bufferedBytes() > options_.highWater) {
    producerPaused_ = true;
    if (protocol_) protocol_->pauseProducing();
  }
}

void TcpTransport::startSend() {
  if (sendInFlight_ || state_ == State::kClosing || state_ == State::kClosed) return;
  if (sending_.empty() && pending_.empty() && queue_.empty() && !file_ && ktls_ &&
      !ktls_->outgoing.empty()) {
    // A control record (alert) after everything written before it, with its type in a cmsg.
    KernelTlsState& k = *ktls_;
    auto& rec = k.outgoing.front();
    k.sendIov = {rec.data.data(), rec.data.size()};
    k.sendMsg = {};
    k.sendMsg.msg_iov = &k.sendIov;
    k.sendMsg.msg_iovlen = 1;
    k.sendMsg.msg_control = k.sendCmsg;
    k.sendMsg.msg_controllen = sizeof(k.sendCmsg);
    cmsghdr* c = CMSG_FIRSTHDR(&k.sendMsg);
    c->cmsg_level = SOL_TLS;
    c->cmsg_type = TLS_SET_RECORD_TYPE;
    c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
    *CMSG_DATA(c) = rec.type;
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_sendmsg(sqe, fd_, &k.sendMsg, MSG_NOSIGNAL);
    Ring::setOp(sqe, &k.controlSendOp);
    sendInFlight_ = true;
    k.controlSendInFlight = true;
    ++inflight_;
    sendStarted();
    return;
  }
  if (sending_.empty() && !queue_.empty()) {
    OutItem& front = queue_.front();
    if (front.file) {
      // Splice file pages through a pipe to the socket: no copy through user space, and over
      // kernel TLS the kernel encrypts them.
      FileIo& io = fileIo();
      if (io.pipe[0] < 0) {
        if (pipe2(io.pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
          Status why = Status::fromErrno(errno, "sendFile: pipe");
          file_ = std::move(front.file);
          queue_.pop_front();
          finishFile(why);
          closeNow(why, false);
          return;
        }
        int size = fcntl(io.pipe[1], F_SETPIPE_SZ, 1 << 20);
        io.pipeSize = size > 0 ? static_cast<size_t>(size) : 65536;
      }
      file_ = std::move(front.file);
      queue_.pop_front();
      spliceNext();
      return;
    }
    sending_.swap(front.bytes);
    queue_.pop_front();
  }
  if (sending_.empty()) {
    if (pending_.empty()) return;
    sending_.swap(pending_);
  }
  io_uring_sqe* sqe = shard_.ring().sqe();
  io_uring_prep_send(sqe, fd_, sending_.data(), sending_.size(), MSG_NOSIGNAL);
  Ring::setOp(sqe, &sendOp_);
  sendInFlight_ = true;
  ++inflight_;
  sendStarted();
}

void TcpTransport::sendStarted() {
  // One send is in flight at a time and it completes as soon as the kernel takes any byte, so a
  // send completing is progress. But the kernel reports the socket writable only once a third of
  // its (autotuned, megabytes large) buffer is free: a slow reader can keep a send waiting far
  // longer than the timeout while it reads steadily. So the timer, while a send waits, also asks
  // the kernel how much it still holds (SIOCOUTQ: sent but unacknowledged, and unsent): when that
  // shrinks, the peer is reading. The data path pays one clock read per send; the timer is armed
  // only when none is, and the ioctl runs only for sends that already waited a check period.
  if (options_.sendTimeout.count() <= 0) return;
  sendSince_ = shard_.now();
  if (!sendTimerArmed_) armSendTimer(sendCheckPeriod());
}

reactor::Shard::Clock::duration TcpTransport::sendCheckPeriod() const {
  // A peer that stops reading is closed between sendTimeout and 1.25 sendTimeout after the last
  // progress; one that makes any within every sendTimeout never is.
  return std::max<reactor::Shard::Clock::duration>(options_.sendTimeout / 4,
                                                   std::chrono::milliseconds(1));
}

void TcpTransport::armSendTimer(reactor::Shard::Clock::duration delay) {
  sendTimerArmed_ = true;
  sendTimer_ = shard_.callLater(delay, [this] { onSendTimer(); });
}

void TcpTransport::onSendTimer() {
  sendTimerArmed_ = false;
  if (!sendInFlight_ || state_ == State::kClosing || state_ == State::kClosed) {
    sendStall_.reset();  // output is idle: the next send arms the timer again
    return;
  }
  auto now = shard_.now();
  auto period = sendCheckPeriod();
  if (now - sendSince_ < period) {
    sendStall_.reset();  // a send completed recently: progress
    armSendTimer(sendSince_ + period - now);
    return;
  }
  int queued = 0;
  if (ioctl(fd_, SIOCOUTQ, &queued) != 0) queued = sendStall_ ? sendStall_->queued : 0;
  if (!sendStall_ || sendStall_->send != sendSince_ || queued < sendStall_->queued) {
    // A first look at this send (whatever moved before it is not known: count from now), or
    // the kernel's queue shrank since the last look: the peer reads.
    if (!sendStall_) sendStall_ = std::make_unique<SendStall>();
    *sendStall_ = {sendSince_, now, queued};
  } else if (now - sendStall_->since >= options_.sendTimeout) {
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g", options_.sendTimeout.count() / 1000.0);
    // A reset, not a FIN: the peer reads nothing, so a graceful close would leave the unsent
    // bytes in the kernel for minutes more; the reset frees them (and the descriptor) now.
    closeNow(Status(Status::Code::kTimeout,
                    std::string("send timeout: the peer accepted no data for ") + seconds +
                        " s (it stopped reading); closing"),
             true);
    return;
  }
  armSendTimer(period);
}

void TcpTransport::onSend(int res, uint32_t) {
  sendInFlight_ = false;
  --inflight_;
  if (res >= 0) {
    shard_.stats().bytesOut.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    sending_.consume(static_cast<size_t>(res));
    // Drained: give the buffer back. An idle connection then holds no send buffer (1-2 KiB each
    // after a TLS handshake, 7% of an idle TLS connection's memory); a busy one pays one
    // small allocation per response, which glibc's thread cache serves in tens of nanoseconds.
    if (sending_.empty()) sending_.release();
    startSend();
    if (producerPaused_ && bufferedBytes() <= options_.lowWater && state_ == State::kOpen) {
      producerPaused_ = false;
      if (protocol_) protocol_->resumeProducing();
    }
    // Closing, or a kernel TLS hand-over, waits for the send side to drain.
    if (state_ == State::kDisconnecting || (ktls_ && ktls_->pending)) shard_.scheduleTurnEnd(this);
  } else if (res != -ECANCELED || state_ == State::kOpen) {
    closeNow(Status::fromErrno(-res, "send to " + peer_.toString()), false);
  }
  maybeFinish();
}

void TcpTransport::onTurnEnd() {
  if (state_ == State::kClosing) {
    if (inflight_ == 0) finish();
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
  // Exact reads are over (they happen only during TLS handshakes): free their buffer here, never
  // while a delivery from it may still be on the stack.
  if (exact_ && !exactArmed_ && readLimit_ == api::LowerTransport::kNoReadLimit) exact_.reset();
  auto outputIdle = [this] {
    return !sendInFlight_ && bufferedBytes() == 0 && queue_.empty() && !file_;
  };
  if (ktls_ && ktls_->pending && state_ == State::kOpen && outputIdle() &&
      !recvArmed_) {
    installKernelTls();
    if (state_ == State::kClosing || state_ == State::kClosed) return;
  }
  if (state_ == State::kOpen && !readingPaused_ && !recvArmed_ && !eof_ &&
      !(ktls_ && (ktls_->pending || ktls_->controlArmed))) {
    armRecv();
  }
  if (state_ == State::kDisconnecting && outputIdle() &&
      !(ktls_ && !ktls_->outgoing.empty())) {
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
  // Everything received but not yet processed belongs after the trigger: the protocol's own
  // buffer (the rest of the read that held the trigger, lines split but not delivered), then
  // what the transport held back while paused.
  std::string early = protocol_->takeUnprocessedInput();
  if (!held_.empty()) {
    early.append(held_.view());
    held_.clear();
  }
  tlsStarted_ = true;
  protocol_ = tls->wrapForStartTLS(std::move(protocol_), std::move(options.onHandshake));
  protocol_->makeConnection(this);
  api::PipelinedInput policy = options.pipelined;
  if (policy == api::PipelinedInput::kAuto) {
    // The TCP client sends the trigger and the TCP server the go-ahead. Bytes behind the trigger
    // (TCP server) were sent before the peer saw the go-ahead: reject them. Bytes behind the
    // go-ahead (TCP client) are discarded, except with reversed roles (normal=false), where the
    // TCP server is the TLS client and its ClientHello follows its go-ahead at once.
    if (tlsClient) {
      policy = api::PipelinedInput::kDiscard;
    } else {
      policy = outgoing_ ? api::PipelinedInput::kUseAsTls : api::PipelinedInput::kReject;
    }
  }
  if (!early.empty()) {
    switch (policy) {
      case api::PipelinedInput::kReject:
        WHORL_LOG(kWarning,
                  "closing %s: %zu bytes of plaintext arrived after STARTTLS, before the TLS "
                  "handshake (possible command injection, CVE-2011-0411)",
                  peer_.toString().c_str(), early.size());
        // What was written before startTLS (the go-ahead) is still sent, then the connection
        // closes; nothing that arrived is ever delivered.
        reason_ = Status(Status::Code::kTls,
                         "plaintext pipelined after STARTTLS before the TLS handshake (" +
                             std::to_string(early.size()) +
                             " bytes; possible command injection, CVE-2011-0411)");
        state_ = State::kDisconnecting;
        shard_.scheduleTurnEnd(this);
        break;
      case api::PipelinedInput::kDiscard:
        WHORL_LOG(kWarning,
                  "%s: discarded %zu bytes received after STARTTLS before the TLS handshake "
                  "(possible injection, CVE-2021-23222 class)",
                  peer_.toString().c_str(), early.size());
        break;
      case api::PipelinedInput::kUseAsTls:
      case api::PipelinedInput::kAuto:
        // Fed to the TLS layer at the end of this turn, ahead of anything received later.
        held_.append(early);
        shard_.scheduleTurnEnd(this);
        break;
    }
  }
  return Status::ok();
}

void TcpTransport::pauseProducing() {
  if (readingPaused_) return;
  readingPaused_ = true;
  if (recvArmed_) {
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_cancel(sqe, &recvOp_, 0);
    Ring::setOp(sqe, &cancelOp_);
    ++inflight_;
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
  if (sendTimerArmed_) {
    sendTimerArmed_ = false;
    sendTimer_.cancel();
  }
  sendStall_.reset();
  if (recvArmed_ || sendInFlight_ || (ktls_ && ktls_->controlArmed)) {
    // Cancel every op on this socket; the socket itself is closed after the last completion, so
    // the fd number cannot be reused while a cancel or op still refers to it.
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_cancel_fd(sqe, fd_, IORING_ASYNC_CANCEL_ALL);
    Ring::setOp(sqe, &cancelOp_);
    ++inflight_;
  }
  maybeFinish();
}

void TcpTransport::onCancel(int, uint32_t) {
  --inflight_;
  maybeFinish();
}

void TcpTransport::maybeFinish() {
  // connectionLost runs at the end of the turn, never inside the protocol's own call.
  if (state_ == State::kClosing && inflight_ == 0) shard_.scheduleTurnEnd(this);
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
    if (item.file && item.file->done) item.file->done(Status(Status::Code::kAborted, "sendFile: the connection closed first"));
  }
  queue_.clear();
  held_.release();
  shard_.stats().open.fetch_sub(1, std::memory_order_relaxed);
  shard_.stats().closed.fetch_add(1, std::memory_order_relaxed);
  if (protocol_) protocol_->deliverConnectionLost(reason_);
  shard_.release(this);
}

}  // namespace whorl::net
