// TcpTransport: a connected TCP socket driven by io_uring, carrying one Protocol.
//
//   auto* t = new TcpTransport(shard, fd, {});      // takes the socket; the shard owns t from here
//   t->start(factory->build(t->getPeer()));         // connectionMade, then reads begin
//
// Reads: one multishot recv into the shard's provided buffer ring; -ENOBUFS re-arms at the end of
// the turn, nothing is lost. Writes: appended to a pending buffer and sent once per loop turn,
// with at most one send in flight (sends on one socket may complete out of order). Flow control:
// above highWater unsent bytes the protocol is paused, below lowWater resumed. Closing cancels the
// ops on the socket; the socket is closed and connectionLost() called once none of the
// transport's ops is armed (uring::Op::armed(): the ring keeps that count, nobody else), and the
// transport (with its protocol) is freed at the end of that turn. Send timeout: output that makes no progress for
// sendTimeout (no send completes and the kernel's send queue does not shrink: the peer stopped
// reading) ends the connection with a reset and a kTimeout reason, whatever the state (writing,
// draining for loseConnection, TLS close_notify); one timer per connection, armed when a send
// starts and none is armed, so the data path pays one clock read per send.
//
// It is also the api::LowerTransport a TLS layer sits on: buffers taken without a copy, the
// layer's flush at the turn end, io_uring file reads, and the kernel TLS hand-over, whose socket
// side (keys, control records) is a KtlsSocket. sendFile splices through a FileSplicer; startTLS
// hands the bytes that arrived before the handshake to a PipelinedInputPolicy. The transport owns
// the socket, its protocol and those parts (each allocated on first use, so idle connections stay
// small); it decides what their completions mean for the connection and keeps the output in order.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>

#include "framework/api/lower_transport.h"
#include "framework/api/protocol.h"
#include "framework/base/address.h"
#include "framework/base/buffer.h"
#include "framework/net/file_splicer.h"
#include "framework/net/ktls_socket.h"
#include "framework/net/proxy_protocol.h"
#include "framework/net/send_timeout.h"
#include "framework/reactor/shard.h"
#include "framework/uring/op.h"

namespace whorl::net {

struct TransportOptions {
  size_t highWater = 256 * 1024;  // pause the producer above this many unsent bytes
  size_t lowWater = 64 * 1024;    // resume it below this
  bool noDelay = true;            // TCP_NODELAY: writes are already gathered per turn
  // Accepted connections start with a PROXY protocol header from a load balancer: the protocol is
  // built for the client address it names, once it has arrived (within proxyHeaderTimeout).
  ProxyProtocolMode proxyProtocol = ProxyProtocolMode::kOff;
  std::chrono::milliseconds proxyHeaderTimeout{10000};
  // Output that makes no progress for this long (the peer stopped reading, its window is shut)
  // ends the connection within 1.25 times it: reset, connectionLost with kTimeout "send timeout:
  // ...". A peer that takes bytes at least once per sendTimeout, however few, is never cut off.
  // Zero: never (nginx's send_timeout is 60 s).
  std::chrono::milliseconds sendTimeout{60000};
};

class TcpTransport final : public api::LowerTransport,
                           public reactor::Resident,
                           private reactor::TurnTask,
                           private KtlsSocket::Owner,
                           private FileSplicer::Owner,
                           private SendTimeout::Owner {
 public:
  // Takes ownership of the connected socket `fd` and registers with `shard`.
  TcpTransport(reactor::Shard& shard, int fd, const TransportOptions& options);
  ~TcpTransport() override;

  // Attaches the protocol (connectionMade) and starts reading. A null protocol closes at once.
  void start(std::unique_ptr<api::Protocol> protocol);
  // Reads the PROXY protocol header first (options.proxyProtocol), then builds the protocol with
  // `factory` for the client address it names and start()s it with the bytes that followed. A
  // malformed, oversized or late header closes the connection with the reason logged.
  void startAfterProxyHeader(std::shared_ptr<api::Factory> factory);

  // api::Transport
  void write(std::string_view data) override;
  void writeSequence(std::span<const std::string_view> parts) override;
  void loseConnection() override;
  void abortConnection() override;
  Address getPeer() const override { return peer_; }
  Address getHost() const override { return host_; }
  void pauseProducing() override;
  void resumeProducing() override;
  size_t bufferedBytes() const override;
  bool disconnecting() const override { return state_ != State::kOpen; }
  api::Reactor& reactor() override { return shard_; }
  Status startTLS(std::shared_ptr<const api::TlsUpgrade> tls,
                  api::StartTLSOptions options = {}) override;
  void sendFile(int fd, uint64_t offset, uint64_t length, std::function<void(Status)> done) override;
  // kKernelTx / kKernelTxRx once kernel TLS is installed, else kNone: the TLS layer above
  // answers for the application.
  api::TlsMode tlsMode() const override;

  // Connections we opened (connector) rather than accepted: the TCP client side.
  void markOutgoing() { outgoing_ = true; }

  // api::LowerTransport: for the TLS layer above.
  void writeBuffer(ByteBuffer& bytes) override;
  bool flushBeforeSend(api::TurnFlush* flusher) override;
  void readFile(int fd, uint64_t offset, size_t length,
                std::function<void(Result<std::string_view>)> done) override;
  Status kernelTlsAvailable() const override;
  void setReadLimit(size_t limit) override;
  void startKernelTls(api::KernelTlsSetup setup, std::function<void(Status)> done) override;
  void sendControlRecord(uint8_t type, std::string_view data) override;
  Status rekeyKernelTlsRx(std::string_view rxInfo) override;
  void rekeyKernelTlsTx(uint8_t type, std::string_view record, std::string txInfo,
                        std::function<void(Status)> done) override;

  api::Protocol* protocol() const { return protocol_.get(); }
  int fd() const { return fd_; }

  // reactor::Resident
  void onShutdown(ShutdownPhase phase) override;

 private:
  enum class State {
    kOpen,
    kDisconnecting,  // flush what is pending, then close
    kClosing,        // waiting for the ops in the ring before closing the socket
    kClosed,
  };
  // Reading, writing, closing (tcp_transport.cc).
  void onRecv(int res, uint32_t flags);
  void onExactRecv(int res, uint32_t flags);
  void onSend(int res, uint32_t flags);
  void onCancel(int res, uint32_t flags);
  void onTurnEnd() override;
  void armRecv();
  void consumeReadLimit(size_t n);
  void receive(std::string_view data);
  void receiveProxyHeader(std::string_view data);
  void failProxyHeader(Status reason);
  void deliver(std::string_view data);
  void afterWrite();
  void startSend();
  void maybeResumeProducer();
  void closeNow(Status reason, bool reset);
  void maybeFinish();
  void finish();
  // sendFile through the FileSplicer (FileSplicer::Owner).
  void startFile();
  void spliceNext();
  bool fileBusy() const { return splicer_ && splicer_->busy(); }
  void finishFile(Status status);
  void onSpliceIn(int res) override;
  void onSpliceOut(int res) override;
  // A layer's file reads and the kernel TLS hand-over (tcp_transport_lower.cc; KtlsSocket::Owner).
  void onFileRead(int res, uint32_t flags);
  void installKernelTls();
  void onControlRecv(int res) override;
  void onControlSend(int res) override;
  // SendTimeout::Owner
  bool sendWaiting() const override;
  void sendTimedOut(Status reason) override;

  // What is in the ring, asked of the ops themselves (uring::Op::armed()).
  bool recvArmed() const { return recvOp_.armed() || exactArmed(); }
  bool exactArmed() const;  // the armed receive is an exact one (into exact_)
  bool quietSendFits() const;
  bool sendCompletionAwaited() const;  // more to send behind it, a close or a hand-over
  // Quiet sends are for responses, not bulk: a bigger send rarely fits the socket buffer at once.
  static constexpr size_t kMaxQuietSend = 64 * 1024;
  bool sendInFlight() const {  // a send, splice or control record send: one at a time
    return sendOp_.armed() || (splicer_ && splicer_->armed()) || (ktls_ && ktls_->sendArmed());
  }
  bool opsArmed() const;  // any op: the socket stays open and the transport alive until none is

  reactor::Shard& shard_;
  int fd_;
  TransportOptions options_;
  Address peer_;
  Address host_;
  std::unique_ptr<api::Protocol> protocol_;
  // Set while the PROXY protocol header is awaited (before there is a protocol).
  struct ProxyWait {
    explicit ProxyWait(ProxyProtocolMode mode) : parser(mode) {}
    ProxyHeaderParser parser;
    size_t received = 0;  // header bytes so far
    std::shared_ptr<api::Factory> factory;
    api::DelayedCall timer;
  };
  std::unique_ptr<ProxyWait> proxy_;
  State state_ = State::kOpen;
  Status reason_;

  // The operations every connection uses; the rarer ones (exact reads, files, kernel TLS
  // control records) live in parts allocated on first use, so idle connections stay small.
  uring::MemberOp<TcpTransport, &TcpTransport::onRecv> recvOp_{this};
  uring::MemberOp<TcpTransport, &TcpTransport::onSend> sendOp_{this};
  uring::MemberOp<TcpTransport, &TcpTransport::onCancel> cancelOp_{this};
  bool eof_ = false;
  bool lastSendShort_ = false;  // the last send did not take everything: the socket buffer is full
  bool readingPaused_ = false;
  bool producerPaused_ = false;
  bool resetOnClose_ = false;
  bool outgoing_ = false;
  bool tlsStarted_ = false;
  SendTimeout sendTimeout_{shard_, fd_, options_.sendTimeout, *this};

  // Exact reads (a TLS layer keeping bytes meant for the kernel in the socket).
  size_t readLimit_ = api::LowerTransport::kNoReadLimit;
  struct ExactRead;
  std::unique_ptr<ExactRead> exact_;  // its operation and buffer, while exact reads happen
  // sendFile: the output queue holds byte runs and files in order; pending_ is its open tail.
  struct OutItem {
    ByteBuffer bytes;
    std::unique_ptr<FileJob> file;
  };
  // A list, not a deque: an empty std::deque allocates ~600 bytes, on every idle connection.
  std::list<OutItem> queue_;
  std::unique_ptr<FileSplicer> splicer_;  // from the first file sent on; busy() while one is
  // readFile's operation and buffer (one read at a time), from the first use on.
  struct FileRead {
    explicit FileRead(TcpTransport* t) : op(t) {}
    uring::MemberOp<TcpTransport, &TcpTransport::onFileRead> op;
    std::unique_ptr<char[]> buf;
    std::function<void(Result<std::string_view>)> done;
  };
  std::unique_ptr<FileRead> fileRead_;
  std::unique_ptr<KtlsSocket> ktls_;  // from the first startKernelTls on

  // A layer's flush to run at the end of this turn, before sending (flushBeforeSend).
  api::TurnFlush* flusher_ = nullptr;
  bool inFlush_ = false;  // running it: writes are sent by this turn end already

  ByteBuffer pending_;   // written by the protocol, not yet handed to the kernel
  ByteBuffer sending_;   // handed to the kernel by the send in flight
  ByteBuffer held_;      // received while reading was paused
};

}  // namespace whorl::net
