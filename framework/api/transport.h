// Transport: the connection a Protocol writes to (Twisted's ITransport + IPushProducer).
//
//   void Echo::dataReceived(std::string_view data) { transport()->write(data); }
//   transport()->loseConnection();   // flush what was written, then close
//   transport()->abortConnection();  // close now, drop unsent bytes
//
// Writes are buffered and sent once per loop turn. When more than the high-water mark is unsent,
// the protocol's pauseProducing() is called; resumeProducing() follows below the low-water mark
// (see Protocol). pauseProducing()/resumeProducing() on the transport stop and restart delivery
// of dataReceived. The transport owns its Protocol; both live on one shard and are freed after
// connectionLost() returns. A Transport* is valid from connectionMade() to connectionLost().
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "framework/api/deferred.h"
#include "framework/api/reactor.h"
#include "framework/base/address.h"
#include "framework/base/buffer.h"

// OpenSSL's certificate type, named without including OpenSSL (Twisted's transports hand out
// the OpenSSL object too; wrap it as tls::Certificate).
typedef struct x509_st X509;

namespace whorl::api {

class Protocol;

// What startTLS does with bytes that arrived after the trigger but before the TLS handshake began
// (the rest of the read that held "STARTTLS", lines already split but not delivered, receives in
// flight). In protocols where the client must wait for the server's go-ahead (SMTP, IMAP, POP3,
// the seed's STARTTLS/READY), such bytes are an injection attack (CVE-2011-0411, CVE-2021-23222).
enum class PipelinedInput {
  kAuto,      // TLS server: kReject on accepted connections, kUseAsTls on outgoing ones
              // (reversed roles: the peer's ClientHello may follow the go-ahead at once);
              // TLS client: kDiscard
  kReject,    // close the connection with a reason, and log it
  kDiscard,   // drop the bytes, log it, go on with the handshake
  kUseAsTls,  // feed them to TLS in order (protocols where the peer may pipeline its handshake)
};

struct StartTLSOptions {
  // Twisted's `normal`: the TCP client acts as TLS client. false reverses the roles.
  bool normal = true;
  PipelinedInput pipelined = PipelinedInput::kAuto;
};

// A TLS configuration that can wrap a live connection (implemented by tls::TlsContext; api does
// not depend on OpenSSL).
class TlsUpgrade {
 public:
  virtual ~TlsUpgrade() = default;
  // True for client options (optionsForClientTLS), false for server options.
  virtual bool actsAsClient() const = 0;
  // Puts `app` under a new TLS layer; the returned protocol goes below it on the transport.
  virtual std::unique_ptr<Protocol> wrapForStartTLS(std::unique_ptr<Protocol> app) const = 0;
};

// Kernel TLS hand-over (used by the TLS layer, not by applications): the crypto_info blobs for
// setsockopt(SOL_TLS, TLS_TX / TLS_RX), and where records that are not application data go.
struct KernelTlsSetup {
  std::string txInfo;
  std::string rxInfo;
  // A record of another type (alert 21, handshake 22) read from the kernel, decrypted.
  std::function<void(uint8_t type, std::string_view data)> onControlRecord;
};

// For layers (TLS) over a transport: work the transport runs at the end of a loop turn, just
// before it sends what was written during the turn (see Transport::flushBeforeSend).
class TurnFlush {
 public:
  virtual void flushBeforeSend() = 0;

 protected:
  ~TurnFlush() = default;
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual void write(std::string_view data) = 0;
  virtual void writeSequence(std::span<const std::string_view> parts) {
    for (auto p : parts) write(p);
  }
  void writeSequence(std::initializer_list<std::string_view> parts) {
    writeSequence(std::span<const std::string_view>(parts.begin(), parts.size()));
  }
  // write(bytes.view()), leaving `bytes` empty. A transport may take the storage instead of
  // copying from it (and leave its own spare storage in `bytes`): a layer that produces whole
  // buffers (TLS records) then hands them down without a copy.
  virtual void writeBuffer(ByteBuffer& bytes) {
    write(bytes.view());
    bytes.clear();
  }

  // For layers: calls flusher->flushBeforeSend() once, at the end of this loop turn, before the
  // bytes written so far are sent (a layer turns the turn's writes into one batch of records
  // there, with no callback to allocate). false if this transport cannot; the layer then
  // schedules its own callback. `flusher` must live as long as this transport: the layer is the
  // transport's protocol (or inside it).
  virtual bool flushBeforeSend(TurnFlush* flusher) {
    (void)flusher;
    return false;
  }
  // Sends everything written so far, then closes; connectionLost gets a clean-close reason.
  virtual void loseConnection() = 0;
  // Closes at once (TCP RST), dropping unsent bytes; connectionLost gets kAborted.
  virtual void abortConnection() = 0;
  virtual Address getPeer() const = 0;
  virtual Address getHost() const = 0;

  // Stop / restart calling the protocol's dataReceived (reads are held back, so the peer's sends
  // eventually block: back-pressure). Bytes already received are kept, not lost.
  virtual void pauseProducing() = 0;
  virtual void resumeProducing() = 0;

  // Bytes written but not yet accepted by the kernel (or the layer below).
  virtual size_t bufferedBytes() const = 0;
  // True once loseConnection/abortConnection was called or the connection is going away.
  virtual bool disconnecting() const = 0;
  // The event loop this transport lives on.
  virtual Reactor& reactor() = 0;

  // TLS (Twisted's ISSLTransport). Plain transports answer "not TLS".
  virtual bool isTLS() const { return false; }
  // The peer's certificate once the handshake completed (null if none): tls::Certificate(it).
  virtual std::shared_ptr<X509> getPeerCertificate() const { return nullptr; }
  // The ALPN result, else the NPN result, else none.
  virtual std::optional<std::string> negotiatedProtocol() const { return std::nullopt; }
  virtual std::string tlsVersion() const { return {}; }  // "TLSv1.3"
  virtual std::string cipher() const { return {}; }      // "TLS_AES_128_GCM_SHA256"
  virtual bool sessionResumed() const { return false; }

  // Switches this live connection to TLS under the same protocol (Twisted's startTLS): no second
  // connectionMade, handshakeCompleted() when done, connectionLost(reason) if it fails. Bytes
  // written before the call go out first in clear; later writes are encrypted once the handshake
  // completes. Errors: already TLS, roles that do not match the options, unsupported transport.
  virtual Status startTLS(std::shared_ptr<const TlsUpgrade> tls, StartTLSOptions options = {}) {
    (void)tls;
    (void)options;
    return Status::invalidArgument("startTLS is not supported on this transport");
  }

  // Sends `length` bytes of the open file `fd` from `offset`, after everything written before
  // and before anything written after. `done` runs once on the reactor thread: ok when the last
  // byte went to the kernel, else why not (the file was shorter, the connection closed). Keep fd
  // open until then. Plain TCP and kernel TLS splice the file to the socket (no user-space
  // copy); userspace TLS reads and encrypts. This default reads and writes (for test doubles).
  virtual void sendFile(int fd, uint64_t offset, uint64_t length, std::function<void(Status)> done);
  // The same as a Deferred: fires when the last byte went to the kernel, or with why not.
  Deferred<void> sendFile(int fd, uint64_t offset, uint64_t length) {
    Deferred<void> sent;
    sendFile(fd, offset, length, [sent](Status s) mutable { sent.fire(std::move(s)); });
    return sent;
  }
  // Reads up to `length` bytes of `fd` at `offset` without blocking other connections; `done`
  // gets the bytes (empty at end of file) or the error. This default uses pread.
  virtual void readFile(int fd, uint64_t offset, size_t length,
                        std::function<void(Result<std::string_view>)> done);

  // --- kernel TLS, for layers: a socket transport can hand record crypto to the kernel ---
  // Ok if this transport can hand TLS records to the kernel; otherwise why not (the reason is
  // logged and, with ktls=require, becomes the connection's failure).
  virtual Status kernelTlsAvailable() const {
    return Status(Status::Code::kUnavailable, "kernel TLS needs a TCP socket transport");
  }
  // Deliver at most `limit` more bytes, then stop reading until called again (exact reads keep
  // bytes meant for the kernel in the socket). kNoReadLimit streams freely again.
  static constexpr size_t kNoReadLimit = static_cast<size_t>(-1);
  virtual void setReadLimit(size_t limit) { (void)limit; }
  // Once every byte written so far is on the wire, installs the kernel keys; from then on write()
  // takes and dataReceived() delivers plaintext. `done` runs on the reactor thread with the
  // result (a refusal leaves the transport as it was).
  virtual void startKernelTls(KernelTlsSetup setup, std::function<void(Status)> done) {
    (void)setup;
    done(Status(Status::Code::kUnavailable, "kernel TLS is not supported on this transport"));
  }
  // Kernel TLS only: sends one record of another type (an alert) after what was written.
  virtual void sendControlRecord(uint8_t type, std::string_view data) {
    (void)type;
    (void)data;
  }
  // Kernel TLS, TLS 1.3 KeyUpdate (the kernel takes a second key from Linux 6.14; older kernels
  // refuse it, 6.1 with EBUSY). Installs the peer's next key for receiving; called while the
  // peer's KeyUpdate record is being delivered (the kernel fails reads with EKEYEXPIRED until a
  // new key is set). Returns why not, and the connection stays as it was.
  virtual Status rekeyKernelTlsRx(std::string_view rxInfo) {
    (void)rxInfo;
    return Status(Status::Code::kUnavailable, "kernel TLS is not supported on this transport");
  }
  // Sends `record` as one record of `type` (our KeyUpdate: 22) under the current sending key,
  // after everything written so far, then installs txInfo as the sending key. `done` runs on the
  // reactor thread with the result (not at all if the connection closes first). Bytes written
  // before `done` still go out ahead of the record: hold them back to send nothing in between.
  virtual void rekeyKernelTlsTx(uint8_t type, std::string_view record, std::string txInfo,
                                std::function<void(Status)> done) {
    (void)type;
    (void)record;
    (void)txInfo;
    done(Status(Status::Code::kUnavailable, "kernel TLS is not supported on this transport"));
  }
  // "userspace", "kernel TX+RX"; empty for plain transports.
  virtual std::string tlsMode() const { return {}; }
};

}  // namespace whorl::api
