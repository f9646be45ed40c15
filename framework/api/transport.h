// Transport: the connection a Protocol writes to (Twisted's ITransport + IPushProducer, and
// ISSLTransport for the TLS queries).
//
//   void Echo::dataReceived(std::string_view data) { transport()->write(data); }
//   transport()->loseConnection();   // flush what was written, then close
//   transport()->abortConnection();  // close now, drop unsent bytes
//   transport()->startTLS(options);  // options: a tls::TLSOptions, e.g. built from cert.options()
//   Status sent = co_await transport()->sendFile(fd, 0, size);      // Deferred forms, in coroutines
//   Status secured = co_await transport()->startTLSDeferred(options);
//
// Writes are buffered and sent once per loop turn. When more than the high-water mark is unsent,
// the protocol's pauseProducing() is called; resumeProducing() follows below the low-water mark
// (see Protocol). pauseProducing()/resumeProducing() on the transport stop and restart delivery
// of dataReceived. The transport owns its Protocol; both live on one shard and are freed after
// connectionLost() returns. A Transport* is valid from connectionMade() to connectionLost().
//
// This is what applications use. What layers (TLS) need from the transport below them (taking
// whole buffers, end-of-turn flushes, file reads, the kernel TLS hand-over) is a separate
// interface, api::LowerTransport in framework/api/lower_transport.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "framework/api/deferred.h"
#include "framework/api/reactor.h"
#include "framework/base/address.h"
#include "framework/base/status.h"

// OpenSSL's certificate type, named without including OpenSSL (Twisted's transports hand out
// the OpenSSL object too; wrap it as tls::Certificate). It stays here because hiding it behind
// tls::Certificate would make api depend on framework/tls.
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
  // Called once on the reactor thread: ok right after the protocol's handshakeCompleted(), or why
  // the handshake failed (then the connection ends and connectionLost() follows). startTLSDeferred
  // sets it.
  std::function<void(Status)> onHandshake = nullptr;
};

// A TLS configuration that can wrap a live connection: what startTLS takes. Implemented in
// framework/tls (api does not depend on OpenSSL); applications pass a tls::TLSOptions, which
// converts to this.
class TlsUpgrade {
 public:
  virtual ~TlsUpgrade() = default;
  // Ok, or why this configuration cannot be used (building it failed: a key that does not match
  // its certificate, ciphers that leave none for the allowed versions). startTLS returns that
  // reason instead of starting.
  virtual Status status() const { return Status::ok(); }
  // True for client options (optionsForClientTLS), false for server options.
  virtual bool actsAsClient() const = 0;
  // Puts `app` under a new TLS layer; the returned protocol goes below it on the transport.
  // `onHandshake` (may be empty) is StartTLSOptions::onHandshake.
  virtual std::unique_ptr<Protocol> wrapForStartTLS(
      std::unique_ptr<Protocol> app, std::function<void(Status)> onHandshake) const = 0;
};

// Where a connection's TLS record crypto runs (Transport::tlsMode).
enum class TlsMode {
  kNone,        // not TLS
  kUserspace,   // OpenSSL encrypts and decrypts
  kKernelTx,    // the kernel encrypts; receiving stays in OpenSSL
  kKernelTxRx,  // the kernel encrypts and decrypts
};
// "", "userspace", "kernel TX", "kernel TX+RX": the words logs, metrics and tests print.
const char* toString(TlsMode mode);

// The failure a sendFile reports when the file is shorter than asked: "sendFile: the file ended
// N bytes before the requested length" (every transport and layer says it the same way).
Status fileEndedEarly(uint64_t missing);

class LowerTransport;  // framework/api/lower_transport.h

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
  // Where the record crypto runs once the handshake is done; kNone for plain transports.
  virtual TlsMode tlsMode() const { return TlsMode::kNone; }

  // Switches this live connection to TLS under the same protocol (Twisted's startTLS): no second
  // connectionMade, handshakeCompleted() when done, connectionLost(reason) if it fails. Bytes
  // written before the call go out first in clear; later writes are encrypted once the handshake
  // completes. `tls` is a tls::TLSOptions (it converts): build it once, e.g. in the factory, and
  // pass the same one to every connection. Errors: the options failed to build (their reason),
  // already TLS, roles that do not match the options, unsupported transport.
  virtual Status startTLS(std::shared_ptr<const TlsUpgrade> tls, StartTLSOptions options = {}) {
    (void)tls;
    (void)options;
    return Status::invalidArgument("startTLS is not supported on this transport");
  }
  // startTLS as a Deferred: fires once the handshake completed (after handshakeCompleted()), or
  // fails with why: startTLS's own error, or the handshake's (the connection then ends, and
  // connectionLost() gets the same reason).
  //   Status secured = co_await transport()->startTLSDeferred(options);
  Deferred<void> startTLSDeferred(std::shared_ptr<const TlsUpgrade> tls, StartTLSOptions options = {}) {
    Deferred<void> done;
    options.onHandshake = [done](Status s) mutable { done.fire(std::move(s)); };
    Status started = startTLS(std::move(tls), std::move(options));
    if (!started.isOk()) done.errback(std::move(started));
    return done;
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

 private:
  // The layer side of this transport (see lowerTransportOf), or null if it has none.
  virtual LowerTransport* lower() { return nullptr; }
  friend LowerTransport* lowerTransportOf(Transport& transport);
};

}  // namespace whorl::api
