// TlsSession: one TLS connection's protocol state (OpenSSL's SSL plus one in-memory BIO), no I/O.
//
//   auto s = TlsSession::create(context).value();
//   s->beginInput(bytesFromPeer);            // ciphertext, read in place (no copy)
//   bool done = false;
//   Status st = s->advanceHandshake(&done);  // st: failure with a readable reason
//   s->endInput();                           // keeps only an incomplete record
//   send(s->output());  s->clearOutput();    // ciphertext for the peer
//   s->write("hello");                       // encrypt (after the handshake)
//   s->read([](std::string_view plain) { ...; return true; });   // false: stop (paused)
//
// The caller moves bytes; the session never blocks or touches a socket, which is what lets TLS
// run over any transport and be tested byte by byte. Owns its SSL; the TlsContext must outlive
// it (the session holds a shared_ptr).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "framework/base/buffer.h"
#include "framework/base/status.h"
#include "framework/base/tls_wire.h"
#include "framework/tls/options.h"

typedef struct bio_st BIO;
typedef struct bio_method_st BIO_METHOD;

namespace whorl::tls {

class TlsSession {
 public:
  static Result<std::unique_ptr<TlsSession>> create(std::shared_ptr<TlsContext> context);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext from the peer: valid until endInput(), which copies only what is unconsumed.
  void beginInput(std::string_view ciphertext);
  void endInput();
  // Ciphertext received but not yet consumed by OpenSSL.
  size_t bufferedInput() const { return in_.size() + view_.size(); }

  // Runs the handshake as far as the input allows. *completed is set when it finishes in this
  // call. A failure returns the reason (and leaves an alert in output()).
  Status advanceHandshake(bool* completed);
  bool handshakeDone() const { return handshakeDone_; }

  enum class ReadResult { kWantMore, kStopped, kPeerClosed, kFailed };
  // Decrypts and hands plaintext to `sink` until the input is used up (kWantMore), sink returns
  // false (kStopped), the peer sent close_notify (kPeerClosed) or an error (kFailed: failure()).
  ReadResult read(const std::function<bool(std::string_view)>& sink);
  // True if decrypted bytes or unprocessed records are waiting (e.g. after kStopped).
  bool hasPendingPlaintext() const;

  // Encrypts plaintext into output(). Only after the handshake.
  Status write(std::string_view plaintext);
  // Queues close_notify.
  void shutdown();

  std::string_view output() const { return out_.view(); }
  void clearOutput() { out_.clear(); }
  // The output buffer itself, for handing it to a transport without a copy
  // (LowerTransport::writeBuffer leaves it empty).
  ByteBuffer& outputBuffer() { return out_; }
  // Frees the input and output buffers if they are empty (after the handshake flight, when the
  // kernel took over, when the connection went quiet).
  void releaseBuffers();

  const Status& failure() const { return failure_; }
  SSL* ssl() const { return ssl_.get(); }
  const TlsContext& context() const { return *context_; }

  // kTLS bookkeeping (see ktls.h): TLS 1.3 application traffic secrets from the key log, and the
  // records sent / received under the traffic keys so far (the kernel's starting sequences).
  // Empty unless record counting is on and the key log supplied it.
  const std::string& trafficSecret(bool client) const;
  // TLS 1.3 KeyUpdate under kernel TLS: the secret of the next generation replaces the current.
  void setTrafficSecret(bool client, std::string secret);
  uint64_t recordsSentUnderTrafficKeys() const;
  uint64_t recordsReceivedUnderTrafficKeys() const;
  // Bytes of the record being received that OpenSSL still needs (0 at a record boundary), and
  // the size of the next record if its header has arrived: lets a transport read exactly up to a
  // record boundary before the kernel takes over.
  size_t bytesToRecordBoundary() const;
  // The record counting above is only needed for a kTLS hand-over; a layer that knows there will
  // be none turns it off (it walks every record header both ways, and its state costs memory).
  // On by default; turn it on again only before any bytes have moved.
  void setRecordCounting(bool on);
  // Called by the key-log callback.
  void noteSecret(const char* line);
  static int sessionIndex();

  std::shared_ptr<X509> peerCertificate() const;
  std::optional<std::string> negotiatedProtocol() const;
  std::string version() const;
  std::string cipher() const;
  bool resumed() const;

 private:
  TlsSession() = default;
  Status fail(int sslError, const char* operation);
  static int bioWrite(BIO* b, const char* data, size_t len, size_t* written);
  static int bioRead(BIO* b, char* data, size_t len, size_t* read);
  static long bioCtrl(BIO* b, int cmd, long num, void* ptr);
  static const BIO_METHOD* bioMethod();

  std::shared_ptr<TlsContext> context_;
  SslPtr ssl_;
  // Filled by the verify callback only when verification fails (most sessions never need one).
  std::unique_ptr<VerifyFailure> verify_;
  ByteBuffer in_;          // leftover ciphertext (an incomplete record)
  std::string_view view_;  // ciphertext being read in place
  ByteBuffer out_;         // ciphertext to send
  bool handshakeDone_ = false;
  bool countRecords_ = true;  // setRecordCounting
  Status failure_;

  // Record framing of the bytes written by OpenSSL and consumed by it.
  struct RecordCounter {
    unsigned char header[tlswire::kRecordHeaderSize];
    size_t headerHave = 0;
    size_t bodyLeft = 0;
    uint64_t records = 0;
    uint64_t sinceChangeCipherSpec = 0;
    // Follows record framing through `n` more bytes, counting records as their headers complete.
    void feed(const unsigned char* data, size_t n);
  };
  // What a kTLS hand-over needs; allocated when the first bytes are counted, so that the
  // connections that turn counting off before (most of them, and all where the kernel has no
  // TLS) never carry it.
  struct KernelBook {
    RecordCounter out;
    RecordCounter in;
    uint64_t outAtCompletion = 0;  // output records when the handshake completed
    uint64_t inAtCompletion = 0;
    uint64_t txAppAtCompletion = 0;
    std::string clientTrafficSecret;
    std::string serverTrafficSecret;
  };
  std::unique_ptr<KernelBook> book_;
  KernelBook& book();
};

}  // namespace whorl::tls
