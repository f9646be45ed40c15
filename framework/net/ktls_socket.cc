#include "framework/net/ktls_socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <linux/tls.h>

#include <cerrno>
#include <cstring>

#include "framework/base/log.h"
#include "framework/base/tls_wire.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace whorl::net {

namespace {
// The kernel hands back one decrypted record per recvmsg.
constexpr size_t kControlBufferSize = tlswire::kMaxRecordSize;
}  // namespace

Status kernelTlsBadRecord(const Address& peer) {
  return Status(Status::Code::kTls, "kernel TLS: a record from " + peer.toString() +
                                        " failed authentication (bad record MAC): corrupted or "
                                        "forged");
}

KtlsSocket::KtlsSocket(uring::Ring& ring, int fd, Owner& owner)
    : ring_(ring), fd_(fd), owner_(owner) {}

void KtlsSocket::start(api::KernelTlsSetup setup, std::function<void(Status)> done) {
  setup_ = std::move(setup);
  done_ = std::move(done);
  pending_ = true;
}

std::function<void(Status)> KtlsSocket::takeDone() {
  pending_ = false;
  auto done = std::move(done_);
  done_ = nullptr;
  return done;
}

Status KtlsSocket::install(const Address& peer) {
  if (setsockopt(fd_, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
    return Status::fromErrno(errno, "kernel TLS: setsockopt TCP_ULP tls");
  }
  if (setsockopt(fd_, SOL_TLS, TLS_TX, setup_.txInfo.data(),
                 static_cast<socklen_t>(setup_.txInfo.size())) != 0) {
    return Status::fromErrno(errno, "kernel TLS: setsockopt TLS_TX");
  }
  tx_ = true;
  if (!setup_.rxInfo.empty()) {
    if (setsockopt(fd_, SOL_TLS, TLS_RX, setup_.rxInfo.data(),
                   static_cast<socklen_t>(setup_.rxInfo.size())) == 0) {
      rx_ = true;
    } else {
      WHORL_LOG(kInfo, "kernel TLS: RX refused for %s (%s); receiving stays in userspace",
                peer.toString().c_str(), strerror(errno));
    }
  }
  // Keys are wiped from our copy once the kernel has them.
  explicit_bzero(setup_.txInfo.data(), setup_.txInfo.size());
  explicit_bzero(setup_.rxInfo.data(), setup_.rxInfo.size());
  return Status::ok();
}

api::TlsMode KtlsSocket::mode() const {
  if (tx_ && rx_) return api::TlsMode::kKernelTxRx;
  if (tx_) return api::TlsMode::kKernelTx;
  return api::TlsMode::kNone;
}

void KtlsSocket::armControlRecv() {
  if (recvOp_.armed()) return;
  if (!recvData_) recvData_.reset(new char[kControlBufferSize]);
  recvIov_ = {recvData_.get(), kControlBufferSize};
  recvMsg_ = {};
  recvMsg_.msg_iov = &recvIov_;
  recvMsg_.msg_iovlen = 1;
  recvMsg_.msg_control = recvCmsg_;
  recvMsg_.msg_controllen = sizeof(recvCmsg_);
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_recvmsg(sqe, fd_, &recvMsg_, 0);
  uring::Ring::setOp(sqe, &recvOp_);
}

KtlsSocket::Record KtlsSocket::received(int res) {
  unsigned char type = tlswire::kApplicationData;
  for (cmsghdr* c = CMSG_FIRSTHDR(&recvMsg_); c != nullptr; c = CMSG_NXTHDR(&recvMsg_, c)) {
    if (c->cmsg_level == SOL_TLS && c->cmsg_type == TLS_GET_RECORD_TYPE) {
      type = *CMSG_DATA(c);
    }
  }
  return {type, std::string_view(recvData_.get(), static_cast<size_t>(res))};
}

void KtlsSocket::deliverControlRecord(const Record& record) {
  if (setup_.onControlRecord) setup_.onControlRecord(record.type, record.data);
}

Status KtlsSocket::rekeyRx(std::string_view rxInfo) {
  int rc = setsockopt(fd_, SOL_TLS, TLS_RX, rxInfo.data(), static_cast<socklen_t>(rxInfo.size()));
  if (rc != 0) return Status::fromErrno(errno, "kernel TLS: setsockopt TLS_RX (new key)");
  return Status::ok();
}

void KtlsSocket::sendNext() {
  // The record's type travels in a cmsg; the kernel frames and encrypts it.
  Outgoing& rec = outgoing_.front();
  sendIov_ = {rec.data.data(), rec.data.size()};
  sendMsg_ = {};
  sendMsg_.msg_iov = &sendIov_;
  sendMsg_.msg_iovlen = 1;
  sendMsg_.msg_control = sendCmsg_;
  sendMsg_.msg_controllen = sizeof(sendCmsg_);
  cmsghdr* c = CMSG_FIRSTHDR(&sendMsg_);
  c->cmsg_level = SOL_TLS;
  c->cmsg_type = TLS_SET_RECORD_TYPE;
  c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
  *CMSG_DATA(c) = rec.type;
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_sendmsg(sqe, fd_, &sendMsg_, MSG_NOSIGNAL);
  uring::Ring::setOp(sqe, &sendOp_);
}

std::optional<KtlsSocket::Rekeyed> KtlsSocket::sent(int res) {
  Outgoing sent;
  if (!outgoing_.empty()) {
    sent = std::move(outgoing_.front());
    outgoing_.pop_front();
  }
  if (res < 0 || sent.txInfoAfter.empty()) return std::nullopt;
  // Our KeyUpdate went out under the old key; nothing has been sent after it (one send in
  // flight at a time), so the new key starts exactly at the next record.
  Rekeyed rekeyed;
  if (setsockopt(fd_, SOL_TLS, TLS_TX, sent.txInfoAfter.data(),
                 static_cast<socklen_t>(sent.txInfoAfter.size())) != 0) {
    rekeyed.status = Status::fromErrno(errno, "kernel TLS: setsockopt TLS_TX (new key)");
  }
  explicit_bzero(sent.txInfoAfter.data(), sent.txInfoAfter.size());
  rekeyed.done = std::move(sent.done);
  return rekeyed;
}

}  // namespace whorl::net
