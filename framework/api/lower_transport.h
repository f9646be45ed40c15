// LowerTransport: what a layer (TLS) needs from the transport below it, beyond api::Transport:
// taking whole buffers, a flush at the end of the loop turn, file reads that do not block the
// loop, and the kernel TLS hand-over. Applications never need it, so their Transport does not
// show it.
//
//   // In a layer, which is the Protocol of the transport below it:
//   void MyLayer::connectionMade() {
//     lower_ = api::lowerTransportOf(*transport());   // null: a plain Transport (a test double)
//   }
//   void MyLayer::send(ByteBuffer& records) {
//     if (lower_ != nullptr) {
//       lower_->writeBuffer(records);                 // the transport may take the storage
//     } else {
//       transport()->write(records.view());
//       records.clear();
//     }
//   }
//
// net::TcpTransport implements it. A layer finds it through the transport it is attached to: one
// virtual call when the connection is made, nothing per byte. Transports without it answer null
// and the layer does without (write instead of writeBuffer, its own callback instead of
// flushBeforeSend, readFileBlocking instead of readFile, userspace TLS). The transport owns the
// layer (its protocol), so the layer may keep the pointer until connectionLost().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "framework/api/transport.h"
#include "framework/base/buffer.h"
#include "framework/base/status.h"

namespace whorl::api {

// For layers over a transport: work the transport runs at the end of a loop turn, just before it
// sends what was written during the turn (see LowerTransport::flushBeforeSend).
class TurnFlush {
 public:
  virtual void flushBeforeSend() = 0;

 protected:
  ~TurnFlush() = default;
};

// Kernel TLS hand-over: the crypto_info blobs for setsockopt(SOL_TLS, TLS_TX / TLS_RX), and where
// records that are not application data go.
struct KernelTlsSetup {
  std::string txInfo;
  std::string rxInfo;
  // A record of another type (alert 21, handshake 22) read from the kernel, decrypted.
  std::function<void(uint8_t type, std::string_view data)> onControlRecord;
};

class LowerTransport : public Transport {
 public:
  // write(bytes.view()), leaving `bytes` empty. The transport may take the storage instead of
  // copying from it (and leave its own spare storage in `bytes`): a layer that produces whole
  // buffers (TLS records) then hands them down without a copy.
  virtual void writeBuffer(ByteBuffer& bytes) = 0;

  // Calls flusher->flushBeforeSend() once, at the end of this loop turn, before the bytes written
  // so far are sent (a layer turns the turn's writes into one batch of records there, with no
  // callback to allocate). false if it cannot now (closing); the layer then schedules its own
  // callback. `flusher` must live as long as this transport: the layer is the transport's
  // protocol (or inside it).
  virtual bool flushBeforeSend(TurnFlush* flusher) = 0;

  // Reads up to `length` bytes of `fd` at `offset` without blocking other connections; `done`
  // gets the bytes (empty at end of file) or the error.
  virtual void readFile(int fd, uint64_t offset, size_t length,
                        std::function<void(Result<std::string_view>)> done) = 0;

  // --- kernel TLS: a socket transport can hand record crypto to the kernel ---
  // Ok if this transport can hand TLS records to the kernel; otherwise why not (the reason is
  // logged and, with ktls=require, becomes the connection's failure).
  virtual Status kernelTlsAvailable() const = 0;
  // Deliver at most `limit` more bytes, then stop reading until called again (exact reads keep
  // bytes meant for the kernel in the socket). kNoReadLimit streams freely again.
  static constexpr size_t kNoReadLimit = static_cast<size_t>(-1);
  virtual void setReadLimit(size_t limit) = 0;
  // Once every byte written so far is on the wire, installs the kernel keys; from then on write()
  // takes and dataReceived() delivers plaintext, and tlsMode() says kKernelTx or kKernelTxRx.
  // `done` runs on the reactor thread with the result (a refusal leaves the transport as it was).
  virtual void startKernelTls(KernelTlsSetup setup, std::function<void(Status)> done) = 0;
  // Kernel TLS only: sends one record of another type (an alert) after what was written.
  virtual void sendControlRecord(uint8_t type, std::string_view data) = 0;
  // Kernel TLS, TLS 1.3 KeyUpdate (the kernel takes a second key from Linux 6.14; older kernels
  // refuse it, 6.1 with EBUSY). Installs the peer's next key for receiving; called while the
  // peer's KeyUpdate record is being delivered (the kernel fails reads with EKEYEXPIRED until a
  // new key is set). Returns why not, and the connection stays as it was.
  virtual Status rekeyKernelTlsRx(std::string_view rxInfo) = 0;
  // Sends `record` as one record of `type` (our KeyUpdate: 22) under the current sending key,
  // after everything written so far, then installs txInfo as the sending key. `done` runs on the
  // reactor thread with the result (not at all if the connection closes first). Bytes written
  // before `done` still go out ahead of the record: hold them back to send nothing in between.
  virtual void rekeyKernelTlsTx(uint8_t type, std::string_view record, std::string txInfo,
                                std::function<void(Status)> done) = 0;

 private:
  LowerTransport* lower() final { return this; }
};

// The layer side of `transport`, or null when it has none (see the top of this file).
LowerTransport* lowerTransportOf(Transport& transport);

// readFile for layers over a transport without a LowerTransport: pread on the calling thread,
// `done` called before it returns.
void readFileBlocking(int fd, uint64_t offset, size_t length,
                      std::function<void(Result<std::string_view>)> done);

}  // namespace whorl::api
