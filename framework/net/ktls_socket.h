// KtlsSocket: the kernel-TLS side of one TCP socket. It hands the record keys to the kernel
// (setsockopt TCP_ULP "tls", then SOL_TLS TLS_TX / TLS_RX), reads the records the kernel will not
// return to a plain recv (alerts, handshake messages: recvmsg, their type in a TLS_GET_RECORD_TYPE
// cmsg), sends our own such records (sendmsg with TLS_SET_RECORD_TYPE), and installs the next
// sending key after our TLS 1.3 KeyUpdate went out.
//
//   ktls_ = std::make_unique<KtlsSocket>(ring, fd, owner);   // on the first startKernelTls
//   ktls_->start(std::move(setup), std::move(done));
//   // ...once every handshake byte is on the wire and no receive is armed:
//   auto done = ktls_->takeDone();
//   done(ktls_->install(peer_));
//   // a plain recv failed with EIO: the next record is not application data
//   ktls_->armControlRecv();           // completes in Owner::onControlRecv(res)
//   KtlsSocket::Record r = ktls_->received(res);
//
// It does not decide what a completion means for the connection, nor when to send: the owner
// (TcpTransport) does, and keeps the output in order (a queued record goes out only after what was
// written before it, one send at a time). Owns its two ops, the buffers they use, the records
// waiting to be sent, and the keys (wiped once the kernel has them; a refused hand-over or a failed
// KeyUpdate send leaves them in memory until freed). Borrows the socket and the ring; the owner
// keeps both open and lives until armed() is false.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "framework/api/lower_transport.h"
#include "framework/api/transport.h"
#include "framework/base/address.h"
#include "framework/base/status.h"
#include "framework/uring/op.h"
#include "framework/uring/ring.h"

namespace whorl::net {

// The reason a connection ends when the kernel reports EBADMSG (its record MAC check failed):
// "kernel TLS: a record from PEER failed authentication (bad record MAC): corrupted or forged".
Status kernelTlsBadRecord(const Address& peer);

class KtlsSocket {
 public:
  // Where the two ops' completions go (res: the kernel's result).
  class Owner {
   public:
    virtual void onControlRecv(int res) = 0;  // armControlRecv()'s recvmsg completed
    virtual void onControlSend(int res) = 0;  // sendNext()'s sendmsg completed

   protected:
    ~Owner() = default;
  };

  // A record waiting to be sent, in order after what was written before it.
  struct Outgoing {
    uint8_t type = 0;
    std::string data;
    std::string txInfoAfter;  // KeyUpdate: the next sending key, installed once this is sent
    std::function<void(Status)> done;
  };

  KtlsSocket(uring::Ring& ring, int fd, Owner& owner);
  KtlsSocket(const KtlsSocket&) = delete;
  KtlsSocket& operator=(const KtlsSocket&) = delete;

  // --- the hand-over ---
  // Keeps the keys and the callback until the owner can install them (pending() until then).
  void start(api::KernelTlsSetup setup, std::function<void(Status)> done);
  bool pending() const { return pending_; }
  // Ends pending() and gives back start()'s callback, for the owner to call with install()'s
  // result once its own state is ready for it.
  std::function<void(Status)> takeDone();
  // TCP_ULP, TLS_TX, then TLS_RX if the setup has an RX key; a refused RX is logged and leaves
  // receiving in userspace (rx() false). The keys are wiped once the kernel has them.
  Status install(const Address& peer);
  bool tx() const { return tx_; }
  bool rx() const { return rx_; }
  api::TlsMode mode() const;

  // --- receiving ---
  // One recvmsg for the next record, with its type; no-op if one is armed. Its buffer exists only
  // while one is (control records are rare: an idle connection keeps none).
  void armControlRecv();
  bool controlRecvArmed() const { return recvOp_.armed(); }
  struct Record {
    uint8_t type;  // tlswire::kApplicationData unless the kernel said otherwise
    std::string_view data;
  };
  // The record onControlRecv(res > 0) brought; valid until releaseRecvBuffer().
  Record received(int res);
  // Hands a record that is not application data to the layer (KernelTlsSetup::onControlRecord).
  void deliverControlRecord(const Record& record);
  void releaseRecvBuffer() { recvData_.reset(); }
  // A new receiving key (the peer's KeyUpdate).
  Status rekeyRx(std::string_view rxInfo);

  // --- sending ---
  void queue(Outgoing record) { outgoing_.push_back(std::move(record)); }
  bool hasOutgoing() const { return !outgoing_.empty(); }
  // One sendmsg of the oldest queued record (the owner sends nothing else meanwhile).
  void sendNext();
  bool sendArmed() const { return sendOp_.armed(); }
  // After onControlSend(res): drops the record that was sent. If it was our KeyUpdate and went
  // out (res >= 0), installs the next sending key and returns that result with the record's
  // callback, for the owner to call; otherwise returns nothing.
  struct Rekeyed {
    Status status;
    std::function<void(Status)> done;
  };
  std::optional<Rekeyed> sent(int res);

  // An op is in the ring: the owner must not be freed yet.
  bool armed() const { return recvOp_.armed() || sendOp_.armed(); }

 private:
  void onRecv(int res, uint32_t) { owner_.onControlRecv(res); }
  void onSend(int res, uint32_t) { owner_.onControlSend(res); }

  uring::Ring& ring_;
  int fd_;
  Owner& owner_;
  uring::MemberOp<KtlsSocket, &KtlsSocket::onRecv> recvOp_{this};
  uring::MemberOp<KtlsSocket, &KtlsSocket::onSend> sendOp_{this};
  api::KernelTlsSetup setup_;
  std::function<void(Status)> done_;
  bool pending_ = false;  // waiting for the owner's send side to drain
  bool tx_ = false;
  bool rx_ = false;
  // recvmsg of a record that is not application data (the kernel reports its type in a cmsg).
  msghdr recvMsg_{};
  iovec recvIov_{};
  std::unique_ptr<char[]> recvData_;  // only while such a recvmsg is armed (idle: no buffer)
  char recvCmsg_[CMSG_SPACE(sizeof(unsigned char))];
  // sendmsg of our own records (alerts, KeyUpdate). A list: an empty deque allocates.
  std::list<Outgoing> outgoing_;
  msghdr sendMsg_{};
  iovec sendIov_{};
  char sendCmsg_[CMSG_SPACE(sizeof(unsigned char))];
};

}  // namespace whorl::net
