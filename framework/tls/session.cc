#include "framework/tls/session.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>

#include "framework/base/tls_wire.h"

namespace whorl::tls {

namespace {
// SSL_get_error() reads this thread's error queue, so an error left there by anything before
// (another connection, a callback) would turn a plain "want more input" into a failure: the queue
// must be empty before each SSL call whose result goes through SSL_get_error(). It nearly always
// is, and ERR_clear_error() costs ~850 instructions (it walks all 16 slots) against ~200 for a
// look, on every record.
void clearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}
}  // namespace

// The session's own BIO: writes append to out_, reads take from in_ and then from the caller's
// view, so ciphertext is parsed where it was received and copied only when a record is cut.
const BIO_METHOD* TlsSession::bioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "whorl-session");
    BIO_meth_set_write_ex(m, &TlsSession::bioWrite);
    BIO_meth_set_read_ex(m, &TlsSession::bioRead);
    BIO_meth_set_ctrl(m, &TlsSession::bioCtrl);
    BIO_meth_set_create(m, [](BIO* b) {
      BIO_set_init(b, 1);
      return 1;
    });
    return m;
  }();
  return method;
}

void TlsSession::RecordCounter::feed(const unsigned char* data, size_t n) {
  while (n > 0) {
    if (bodyLeft > 0) {
      size_t k = std::min(bodyLeft, n);
      bodyLeft -= k;
      data += k;
      n -= k;
      continue;
    }
    header[headerHave++] = *data++;
    --n;
    if (headerHave == tlswire::kRecordHeaderSize) {
      headerHave = 0;
      bodyLeft = (static_cast<size_t>(header[3]) << 8) | header[4];
      ++records;
      if (header[0] == tlswire::kChangeCipherSpec) {
        sinceChangeCipherSpec = 0;  // ChangeCipherSpec: the next record uses the new keys
      } else {
        ++sinceChangeCipherSpec;
      }
    }
  }
}

int TlsSession::sessionIndex() {
  static int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

void TlsSession::noteSecret(const char* line) {
  std::string_view l(line);
  auto take = [&](std::string_view label, std::string* out) {
    if (l.substr(0, label.size()) != label || l.size() <= label.size() || l[label.size()] != ' ') {
      return;
    }
    auto space = l.rfind(' ');
    std::string_view hex = l.substr(space + 1);
    out->clear();
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      out->push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
  };
  if (!countRecords_) return;  // no kTLS hand-over to come (the key log file, if any, has the line)
  take("CLIENT_TRAFFIC_SECRET_0", &book().clientTrafficSecret);
  take("SERVER_TRAFFIC_SECRET_0", &book().serverTrafficSecret);
}

const std::string& TlsSession::trafficSecret(bool client) const {
  static const std::string kNone;
  if (!book_) return kNone;
  return client ? book_->clientTrafficSecret : book_->serverTrafficSecret;
}

void TlsSession::setTrafficSecret(bool client, std::string secret) {
  if (!book_) return;
  (client ? book_->clientTrafficSecret : book_->serverTrafficSecret) = std::move(secret);
}

void TlsSession::setRecordCounting(bool on) {
  countRecords_ = on;
  if (!on) book_.reset();
}

TlsSession::KernelBook& TlsSession::book() {
  if (!book_) book_ = std::make_unique<KernelBook>();
  return *book_;
}

uint64_t TlsSession::recordsSentUnderTrafficKeys() const {
  if (!book_) return 0;
  if (SSL_version(ssl()) == TLS1_3_VERSION) {
    // A TLS 1.3 server writes its session tickets in the call that completes the handshake, after
    // switching to its application key; a client's last handshake record (Finished) is not.
    return book_->txAppAtCompletion + (book_->out.records - book_->outAtCompletion);
  }
  return book_->out.sinceChangeCipherSpec;  // TLS 1.2: Finished was record 0 of the new keys
}

uint64_t TlsSession::recordsReceivedUnderTrafficKeys() const {
  if (!book_) return 0;
  uint64_t after = book_->in.records - book_->inAtCompletion;
  if (SSL_version(ssl()) == TLS1_3_VERSION) return after;
  return book_->in.sinceChangeCipherSpec;
}

size_t TlsSession::bytesToRecordBoundary() const {
  // Bytes received but not yet consumed count towards the record too.
  size_t pendingBytes = bufferedInput();
  if (!book_) return 0;
  const RecordCounter& in = book_->in;
  size_t need;
  if (in.bodyLeft > 0) {
    need = in.bodyLeft;
  } else {
    need = tlswire::kRecordHeaderSize - in.headerHave;
    if (in.headerHave == 0) need = 0;
  }
  // Unconsumed buffered bytes may complete (or pass) the current record; the caller only uses
  // this at a point where OpenSSL has consumed everything it could.
  return need > pendingBytes ? need - pendingBytes : 0;
}

int TlsSession::bioWrite(BIO* b, const char* data, size_t len, size_t* written) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(b));
  if (self->countRecords_) self->book().out.feed(reinterpret_cast<const unsigned char*>(data), len);
  self->out_.append(std::string_view(data, len));
  *written = len;
  return 1;
}

int TlsSession::bioRead(BIO* b, char* data, size_t len, size_t* read) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  size_t n = 0;
  if (!self->in_.empty()) {
    n = std::min(len, self->in_.size());
    std::memcpy(data, self->in_.data(), n);
    self->in_.consume(n);
  }
  if (n < len && !self->view_.empty()) {
    size_t m = std::min(len - n, self->view_.size());
    std::memcpy(data + n, self->view_.data(), m);
    self->view_.remove_prefix(m);
    n += m;
  }
  if (n == 0) {
    BIO_set_retry_read(b);
    *read = 0;
    return 0;
  }
  if (self->countRecords_) self->book().in.feed(reinterpret_cast<const unsigned char*>(data), n);
  *read = n;
  return 1;
}

long TlsSession::bioCtrl(BIO* b, int cmd, long, void*) {
  // OpenSSL asks about a dozen of these per record (flush, kTLS queries): look up the session
  // (a call into libcrypto) only for the two that need it.
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(static_cast<TlsSession*>(BIO_get_data(b))->bufferedInput());
    case BIO_CTRL_WPENDING:
      return static_cast<long>(static_cast<TlsSession*>(BIO_get_data(b))->out_.size());
    default:
      return 0;
  }
}

Result<std::unique_ptr<TlsSession>> TlsSession::create(std::shared_ptr<TlsContext> context) {
  std::unique_ptr<TlsSession> s(new TlsSession());
  s->context_ = std::move(context);
  auto ssl = s->context_->newSSL(&s->verify_);
  if (!ssl) return ssl.status();
  s->ssl_ = std::move(*ssl);
  SSL_set_ex_data(s->ssl(), sessionIndex(), s.get());
  BIO* bio = BIO_new(bioMethod());
  if (bio == nullptr) return Status(Status::Code::kTls, "BIO_new: " + takeOpenSSLErrors());
  BIO_set_data(bio, s.get());
  SSL_set_bio(s->ssl(), bio, bio);  // one BIO both ways; the SSL owns it
  return s;
}

// The SSL goes first, as before the holders: its BIO and ex_data point back into this session.
TlsSession::~TlsSession() { ssl_.reset(); }

void TlsSession::beginInput(std::string_view ciphertext) { view_ = ciphertext; }

void TlsSession::endInput() {
  if (!view_.empty()) in_.append(view_);
  view_ = {};
}

Status TlsSession::fail(int sslError, const char* operation) {
  std::string errors = takeOpenSSLErrors();
  std::string reason;
  if (sslError == SSL_ERROR_SYSCALL && errors.empty()) {
    reason = std::string(operation) + ": unexpected end of the TLS stream";
  } else {
    reason = context_->describeFailure(verify_ ? *verify_ : VerifyFailure{}, errors);
  }
  if (!handshakeDone_) {
    // Name the stage so that logs distinguish "never spoke TLS" from a failed verification.
    if (reason.find("wrong version number") != std::string::npos ||
        reason.find("http request") != std::string::npos ||
        reason.find("packet length too long") != std::string::npos) {
      reason = "the peer does not speak TLS (" + reason + ")";
    } else if (reason == "unsupported protocol") {
      // OpenSSL's words for "no TLS version in common", which read like an ALPN failure.
      reason = "no TLS protocol version in common with the peer (unsupported protocol)";
    }
    reason = "TLS handshake failed: " + reason;
  }
  failure_ = Status(Status::Code::kTls, reason);
  return failure_;
}

Status TlsSession::advanceHandshake(bool* completed) {
  *completed = false;
  if (handshakeDone_) return Status::ok();
  if (!failure_.isOk()) return failure_;
  clearStaleErrors();
  uint64_t outBefore = book_ ? book_->out.records : 0;
  int rc = SSL_do_handshake(ssl());
  if (rc == 1) {
    handshakeDone_ = true;
    *completed = true;
    if (countRecords_) {
      KernelBook& b = book();
      b.outAtCompletion = b.out.records;
      b.inAtCompletion = b.in.records;
      if (SSL_is_server(ssl()) == 1) b.txAppAtCompletion = b.out.records - outBefore;
    }
    return Status::ok();
  }
  int err = SSL_get_error(ssl(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::ok();
  return fail(err, "handshake");
}

TlsSession::ReadResult TlsSession::read(const std::function<bool(std::string_view)>& sink) {
  char buf[tlswire::kMaxPlaintext];
  for (;;) {
    clearStaleErrors();
    size_t n = 0;
    int rc = SSL_read_ex(ssl(), buf, sizeof(buf), &n);
    if (rc == 1) {
      if (!sink(std::string_view(buf, n))) return ReadResult::kStopped;
      // Input used up and nothing buffered inside OpenSSL (no decrypted bytes, no part of a
      // record): another SSL_read could only say "want read". Skipping it saves a full pass
      // through the record layer per read.
      if (bufferedInput() == 0 && SSL_has_pending(ssl()) == 0) return ReadResult::kWantMore;
      continue;
    }
    int err = SSL_get_error(ssl(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return ReadResult::kWantMore;
    if (err == SSL_ERROR_ZERO_RETURN) return ReadResult::kPeerClosed;
    (void)fail(err, "read");
    return ReadResult::kFailed;
  }
}

bool TlsSession::hasPendingPlaintext() const {
  return SSL_pending(ssl()) > 0 || bufferedInput() > 0;
}

Status TlsSession::write(std::string_view plaintext) {
  if (!failure_.isOk()) return failure_;
  while (!plaintext.empty()) {
    clearStaleErrors();
    size_t n = 0;
    int rc = SSL_write_ex(ssl(), plaintext.data(), plaintext.size(), &n);
    if (rc != 1) return fail(SSL_get_error(ssl(), rc), "write");
    plaintext.remove_prefix(n);
  }
  return Status::ok();
}

void TlsSession::shutdown() {
  ERR_clear_error();
  // The first call queues our close_notify; we do not wait for the peer's (bounded close).
  SSL_shutdown(ssl());
  ERR_clear_error();
}

void TlsSession::releaseBuffers() {
  if (in_.empty()) in_.release();
  if (out_.empty()) out_.release();
}

std::shared_ptr<X509> TlsSession::peerCertificate() const {
  X509* x = SSL_get1_peer_certificate(ssl());
  if (x == nullptr) return nullptr;
  return std::shared_ptr<X509>(x, X509_free);
}

std::optional<std::string> TlsSession::negotiatedProtocol() const {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl(), &p, &len);
  if (p != nullptr && len > 0) return std::string(reinterpret_cast<const char*>(p), len);
#ifndef OPENSSL_NO_NEXTPROTONEG
  SSL_get0_next_proto_negotiated(ssl(), &p, &len);
  if (p != nullptr && len > 0) return std::string(reinterpret_cast<const char*>(p), len);
#endif
  return std::nullopt;
}

std::string TlsSession::version() const { return SSL_get_version(ssl()); }

std::string TlsSession::cipher() const {
  const char* c = SSL_get_cipher_name(ssl());
  return c ? c : "";
}

bool TlsSession::resumed() const { return SSL_session_reused(ssl()) == 1; }

}  // namespace whorl::tls
