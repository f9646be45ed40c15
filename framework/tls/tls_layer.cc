#include "framework/tls/tls_layer.h"

#include <linux/tls.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <atomic>
#include <cstring>

#include "framework/base/log.h"
#include "framework/tls/ktls.h"
#include "framework/tls/openssl_ptr.h"

namespace whorl::tls {

namespace {
constexpr size_t kMaxRecord = 16384;
constexpr size_t kRecordHeader = 5;
// OpenSSL's record buffers (see TlsLayer::noteRead): a connection that reads twice within
// kBufferIdle keeps them until it has read nothing for that long; at most kMaxBufferKeepers
// connections per thread keep them (about 34 KiB each).
constexpr std::chrono::seconds kBufferIdle{1};
constexpr size_t kMaxBufferKeepers = 256;
std::atomic<uint64_t> g_userspace{0};
std::atomic<uint64_t> g_kernelTx{0};
std::atomic<uint64_t> g_kernelTxRx{0};
}  // namespace

TlsModeCounts tlsModeCounts() {
  return {g_userspace.load(), g_kernelTx.load(), g_kernelTxRx.load()};
}

TlsLayer::TlsLayer(std::shared_ptr<TlsContext> context, std::unique_ptr<api::Protocol> app,
                   TlsLayerOptions options)
    : context_(std::move(context)), app_(std::move(app)) {
  if (options.upgrade || options.onHandshake || options.connectAfterHandshake) {
    options_ = std::make_unique<TlsLayerOptions>(std::move(options));
  }
}

TlsLayer::~TlsLayer() {
  *alive_ = false;
  handshakeTimer_.cancel();
  releaseKeptBuffers();
}

void TlsLayer::connectionMade() {
  lower_ = api::lowerTransportOf(*transport());
  auto session = TlsSession::create(context_);
  if (!session) {
    failWith(session.status());
    transport()->abortConnection();
    return;
  }
  session_ = std::move(session.value());
  auto alive = alive_;
  auto timeout = context_->handshakeTimeout();
  handshakeTimer_ = transport()->reactor().callLater(timeout, [this, alive, timeout] {
    if (!*alive || session_->handshakeDone()) return;
    failWith(Status(Status::Code::kTimeout, "TLS handshake timed out after " +
                                                std::to_string(timeout.count()) + " ms"));
    transport()->abortConnection();
  });
  if (options_ && options_->upgrade) {
    app_->rebindTransport(&upper_);
  } else if (!(options_ && options_->connectAfterHandshake)) {
    app_->makeConnection(&upper_);
  }
  if (lost_) return;
  if (context_->ktls() != KtlsMode::kOff) {
    Status available =
        lower_ != nullptr
            ? lower_->kernelTlsAvailable()
            : Status(Status::Code::kUnavailable, "kernel TLS needs a TCP socket transport");
    if (available.isOk()) {
      // Read exactly record by record during the handshake, so that every byte after it is
      // still in the socket when the kernel takes over.
      kernel_ = Kernel::kWanted;
      lower_->setReadLimit(kRecordHeader);
    } else if (context_->ktls() == KtlsMode::kRequire) {
      failWith(Status(Status::Code::kTls, "ktls=require: " + available.message()));
      transport()->abortConnection();
      return;
    }
  }
  if (lost_) return;
  // Record counting serves only the kernel hand-over.
  if (kernel_ == Kernel::kOff) session_->setRecordCounting(false);
  advance();
}

void TlsLayer::dataReceived(std::string_view data) {
  if (!session_ || !failure_.isOk()) return;
  if (kernel_ == Kernel::kActive && kernelRx_) {
    // The kernel decrypted it.
    if (!closing_) app_->dataReceived(data);
    return;
  }
  if (kernel_ == Kernel::kOff && session_->handshakeDone()) noteRead();
  session_->beginInput(data);
  advance();
  session_->endInput();
  flushCiphertext();
  if (kernel_ == Kernel::kWanted && !lost_ && failure_.isOk()) {
    if (session_->handshakeDone()) {
      maybeStartKernel();
    } else {
      requestRecordBoundaryRead();
    }
  }
}

void TlsLayer::requestRecordBoundaryRead() {
  size_t need = session_->bytesToRecordBoundary();
  lower_->setReadLimit(need > 0 ? need : kRecordHeader);
}

void TlsLayer::maybeStartKernel() {
  if (kernel_ != Kernel::kWanted) return;
  size_t need = session_->bytesToRecordBoundary();
  if (need > 0) {
    // A record is cut: finish it in userspace, then hand over at its end.
    lower_->setReadLimit(need);
    return;
  }
  lower_->setReadLimit(0);
  auto params = kernelTlsParams(*session_);
  if (!params) {
    kernelFallback(params.status());
    return;
  }
  if (SSL_version(session_->ssl()) == TLS1_3_VERSION && SSL_is_server(session_->ssl()) == 0) {
    // What OpenSSL's own read side expects, to hand it session tickets that the kernel decrypts
    // after the hand-over (see handBackToOpenSSL).
    handBack_ = std::make_unique<HandBack>();
    handBack_->cipherType = params->cipherType;
    handBack_->key = params->rx.key;
    handBack_->iv = params->rx.salt + params->rx.iv;
    handBack_->sequence = params->rx.sequence;
  }
  kernel_ = Kernel::kInstalling;
  api::KernelTlsSetup setup;
  setup.txInfo = params->tx.cryptoInfo;
  setup.rxInfo = params->rx.cryptoInfo;
  auto alive = alive_;
  setup.onControlRecord = [this, alive](uint8_t type, std::string_view data) {
    if (*alive) onControlRecord(type, data);
  };
  lower_->startKernelTls(std::move(setup), [this, alive](Status s) {
    if (*alive) onKernelInstalled(std::move(s));
  });
}

void TlsLayer::onKernelInstalled(Status s) {
  if (lost_) return;
  if (!s.isOk()) {
    kernelFallback(s);
    return;
  }
  kernel_ = Kernel::kActive;
  kernelRx_ = transport()->tlsMode() == api::TlsMode::kKernelTxRx;
  countMode();
  if (!kernelRx_) lower_->setReadLimit(api::LowerTransport::kNoReadLimit);
  // What the application wrote meanwhile goes to the kernel as plaintext.
  if (!plainOut_.empty() && !aborted_) transport()->write(plainOut_.view());
  plainOut_.release();
  session_->releaseBuffers();
  pumpFile();
  if (closeAfterHandshake_ || (closing_ && !lost_)) closeGracefully();
}

void TlsLayer::kernelFallback(Status why) {
  if (context_->ktls() == KtlsMode::kRequire) {
    failWith(Status(Status::Code::kTls, "ktls=require: " + why.message()));
    transport()->abortConnection();
    return;
  }
  WHORL_LOG(kDebug, "kernel TLS not used for %s: %s", transport()->getPeer().toString().c_str(),
            why.message().c_str());
  kernel_ = Kernel::kOff;
  session_->setRecordCounting(false);
  countMode();
  lower_->setReadLimit(api::LowerTransport::kNoReadLimit);
  flushPlaintext();
  pumpFile();
  readLoop();
  flushCiphertext();
  if (closeAfterHandshake_) closeGracefully();
}

void TlsLayer::handBackToOpenSSL(std::string_view message) {
  if (!handBack_ || handBack_->key.empty() || !session_) return;
  // Re-encrypt the message as the record OpenSSL expects next (TLS 1.3: inner plaintext is the
  // message plus its content type; nonce = iv XOR sequence; the header is the AAD). OpenSSL's
  // read key and sequence are still those of the hand-over: the kernel's later rekeys and
  // application records never reached it.
  std::string inner(message);
  inner.push_back(22);
  size_t len = inner.size() + 16;
  std::string record = {23, 3, 3, static_cast<char>(len >> 8), static_cast<char>(len & 0xff)};
  unsigned char nonce[12];
  for (int i = 0; i < 12; ++i) {
    unsigned char seq = i < 4 ? 0 : static_cast<unsigned char>(handBack_->sequence >> (8 * (11 - i)));
    nonce[i] = static_cast<unsigned char>(handBack_->iv[static_cast<size_t>(i)]) ^ seq;
  }
  const EVP_CIPHER* cipher = handBack_->cipherType == TLS_CIPHER_CHACHA20_POLY1305 ? EVP_chacha20_poly1305()
                             : handBack_->cipherType == TLS_CIPHER_AES_GCM_256 ? EVP_aes_256_gcm()
                                                                              : EVP_aes_128_gcm();
  EvpCipherCtxPtr owned(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX* ctx = owned.get();
  int n = 0;
  std::string out(inner.size() + 16, '\0');
  bool ok = ctx != nullptr && EVP_EncryptInit_ex(ctx, cipher, nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx, nullptr, nullptr,
                               reinterpret_cast<const unsigned char*>(handBack_->key.data()), nonce) == 1 &&
            EVP_EncryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(record.data()), 5) == 1 &&
            EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n,
                              reinterpret_cast<const unsigned char*>(inner.data()),
                              static_cast<int>(inner.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + n, &n) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, out.data() + inner.size()) == 1;
  if (!ok) {
    WHORL_LOG(kDebug, "kernel TLS: could not hand a session ticket back to OpenSSL");
    return;
  }
  ++handBack_->sequence;
  record += out;
  session_->beginInput(record);
  (void)session_->read([](std::string_view) { return true; });  // a ticket carries no data
  session_->endInput();
  session_->clearOutput();  // the kernel owns the sending side
}

void TlsLayer::countMode() {
  if (modeCounted_) return;
  modeCounted_ = true;
  if (kernel_ != Kernel::kActive) {
    g_userspace.fetch_add(1, std::memory_order_relaxed);
  } else if (kernelRx_) {
    g_kernelTxRx.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_kernelTx.fetch_add(1, std::memory_order_relaxed);
  }
}

void TlsLayer::onControlRecord(uint8_t type, std::string_view data) {
  if (type == 21 && data.size() >= 2) {  // alert
    auto desc = static_cast<unsigned char>(data[1]);
    if (desc == 0) {  // close_notify: answer it and close
      peerCloseNotify_ = true;
      if (!closing_) {
        closing_ = true;
        lower_->sendControlRecord(21, std::string_view("\x01\x00", 2));
        transport()->loseConnection();
      }
      return;
    }
    failWith(Status(Status::Code::kTls,
                    std::string("the peer sent a TLS alert: ") + SSL_alert_desc_string_long(desc)));
    transport()->loseConnection();
    return;
  }
  if (type == 22 && !data.empty()) {  // post-handshake messages
    auto msg = static_cast<unsigned char>(data[0]);
    if (msg == 4) {
      // NewSessionTicket after the kernel took over: give it to OpenSSL so that the client can
      // resume with it, as it would in userspace.
      handBackToOpenSSL(data);
      return;
    }
    // KeyUpdate (RFC 8446 §4.6.3): 24, length 1, request_update; the last message of its record.
    if (msg == 24 && SSL_version(session_->ssl()) == TLS1_3_VERSION && data.size() == 5 &&
        data.substr(1, 3) == std::string_view("\0\0\1", 3) &&
        static_cast<unsigned char>(data[4]) <= 1) {
      onPeerKeyUpdate(data[4] == 1);
      return;
    }
  }
  failWith(Status(Status::Code::kTls, "kernel TLS: unexpected record of type " + std::to_string(type)));
  transport()->loseConnection();
}

void TlsLayer::onPeerKeyUpdate(bool updateRequested) {
  // The peer's records after this one use its next traffic secret: the kernel holds them back
  // (EKEYEXPIRED) until it has the matching key. Kernels before 6.14 cannot take a second key.
  bool server = SSL_is_server(session_->ssl()) == 1;
  auto rx = nextKernelTlsKey(*session_, /*clientSecret=*/server);
  Status s = rx ? lower_->rekeyKernelTlsRx(rx->cryptoInfo) : rx.status();
  if (rx) explicit_bzero(rx->cryptoInfo.data(), rx->cryptoInfo.size());
  if (!s.isOk()) {
    failWith(Status(Status::Code::kTls,
                    "the peer sent a TLS KeyUpdate, which kernel TLS cannot follow on this "
                    "kernel (rekeying needs Linux 6.14; " + s.message() + "): connection closed"));
    lower_->sendControlRecord(21, std::string_view("\x02\x0a", 2));  // unexpected_message
    transport()->loseConnection();
    return;
  }
  WHORL_LOG(kDebug, "kernel TLS: %s updated its key%s", transport()->getPeer().toString().c_str(),
            updateRequested ? " and asked us to update ours" : "");
  if (!updateRequested || closing_) return;  // closing: our close_notify ends our side anyway
  // Ours: a KeyUpdate (update_not_requested) under the current key, then the next key, before
  // any more application data.
  auto tx = nextKernelTlsKey(*session_, /*clientSecret=*/!server);
  if (!tx) {
    failWith(tx.status());
    transport()->loseConnection();
    return;
  }
  ++txRekeys_;
  auto alive = alive_;
  lower_->rekeyKernelTlsTx(22, std::string_view("\x18\x00\x00\x01\x00", 5),
                                std::move(tx->cryptoInfo), [this, alive](Status st) {
                                  if (*alive) onTxRekeyed(std::move(st));
                                });
}

void TlsLayer::onTxRekeyed(Status s) {
  --txRekeys_;
  if (!s.isOk()) {
    failWith(Status(Status::Code::kTls, "kernel TLS: after our KeyUpdate: " + s.message()));
    return;  // the transport closes
  }
  if (txRekeys_ > 0 || lost_) return;
  flushPlaintext();  // what the application wrote meanwhile, under the new key
  pumpFile();
  if (closeAfterRekey_) {
    closeAfterRekey_ = false;
    closeGracefully();
  }
}

void TlsLayer::advance() {
  if (!session_->handshakeDone()) {
    bool completed = false;
    Status s = session_->advanceHandshake(&completed);
    if (!s.isOk()) {
      flushCiphertext();  // the alert tells the peer why
      failWith(s);
      transport()->loseConnection();
      return;
    }
    flushCiphertext();
    if (!completed) return;
    handshakeDone();
    if (lost_ || !failure_.isOk()) return;
  }
  readLoop();
}

void TlsLayer::handshakeDone() {
  handshakeTimer_.cancel();
  session_->releaseBuffers();  // the handshake flight's buffers are not needed any more
  if (options_ && options_->connectAfterHandshake && !options_->upgrade) {
    app_->makeConnection(&upper_);
    if (lost_) return;
  }
  // The application first, then whoever waits for the handshake (a connect result): a protocol
  // handed to a connect's caller has seen connectionMade() and handshakeCompleted().
  app_->handshakeCompleted();
  notifyHandshake(Status::ok());
  if (kernel_ == Kernel::kWanted) return;  // writes wait for the kernel (maybeStartKernel)
  countMode();
  flushPlaintext();
  pumpFile();
  if (closeAfterHandshake_) closeGracefully();
}

void TlsLayer::readLoop() {
  if (appPaused_ || lost_ || !failure_.isOk()) return;
  auto result = session_->read([this](std::string_view plain) {
    app_->dataReceived(plain);
    return !appPaused_ && !lost_ && !closing_;
  });
  switch (result) {
    case TlsSession::ReadResult::kWantMore:
    case TlsSession::ReadResult::kStopped:
      break;
    case TlsSession::ReadResult::kPeerClosed:
      // The peer's close_notify: answer with ours and close.
      if (!closing_) {
        closing_ = true;
        flushPlaintext();
        if (kernel_ == Kernel::kActive) {
          lower_->sendControlRecord(21, std::string_view("\x01\x00", 2));
        } else {
          session_->shutdown();
          flushCiphertext();
        }
        transport()->loseConnection();
      }
      break;
    case TlsSession::ReadResult::kFailed:
      flushCiphertext();
      failWith(session_->failure());
      transport()->loseConnection();
      break;
  }
  flushCiphertext();
}

void TlsLayer::flushPlaintext() {
  if (!session_ || !session_->handshakeDone() || plainOut_.empty() || !failure_.isOk() || aborted_ ||
      kernel_ == Kernel::kWanted || kernel_ == Kernel::kInstalling || txRekeys_ > 0) {
    return;
  }
  if (kernel_ == Kernel::kActive) {
    transport()->write(plainOut_.view());
    plainOut_.release();
    return;
  }
  // Full records: one SSL_write per 16 KiB of what the application wrote this turn.
  while (!plainOut_.empty()) {
    size_t n = std::min(plainOut_.size(), kMaxRecord);
    Status s = session_->write(std::string_view(plainOut_.data(), n));
    if (!s.isOk()) {
      failWith(s);
      transport()->abortConnection();
      return;
    }
    plainOut_.consume(n);
  }
  if (plainOut_.capacity() > 16384) plainOut_.release();  // keep small buffers for reuse
  flushCiphertext();
}

void TlsLayer::flushCiphertext() {
  if (!session_ || lost_) return;
  if (kernel_ == Kernel::kActive) {
    session_->clearOutput();  // the kernel owns the sending side now
    return;
  }
  ByteBuffer& out = session_->outputBuffer();
  if (out.empty()) return;
  if (lower_ != nullptr) {
    lower_->writeBuffer(out);  // leaves it empty; a socket transport takes it without a copy
  } else {
    transport()->write(out.view());
    out.clear();
  }
}

void TlsLayer::scheduleFlush() {
  if (flushScheduled_) return;
  flushScheduled_ = true;
  // The transport below calls flushBeforeSend() at the end of the turn; only a transport that
  // cannot needs a callback (an allocation per flush) on the reactor.
  if (lower_ != nullptr && lower_->flushBeforeSend(this)) return;
  auto alive = alive_;
  transport()->reactor().callSoon([this, alive] {
    if (!*alive) return;
    flushScheduled_ = false;
    flushPlaintext();
  });
}

void TlsLayer::flushBeforeSend() {
  flushScheduled_ = false;
  flushPlaintext();
}

// This thread's connections that keep OpenSSL's record buffers, a list in the order of their
// last read. Layers hold it (shared) while they are on it.
struct TlsLayer::BufferKeepers {
  TlsLayer* head = nullptr;  // most recently read
  TlsLayer* tail = nullptr;  // least recently read
  size_t count = 0;

  void pushFront(TlsLayer* l) {
    l->keepPrev_ = nullptr;
    l->keepNext_ = head;
    if (head != nullptr) head->keepPrev_ = l;
    head = l;
    if (tail == nullptr) tail = l;
    ++count;
  }
  void unlink(TlsLayer* l) {
    (l->keepPrev_ != nullptr ? l->keepPrev_->keepNext_ : head) = l->keepNext_;
    (l->keepNext_ != nullptr ? l->keepNext_->keepPrev_ : tail) = l->keepPrev_;
    l->keepPrev_ = l->keepNext_ = nullptr;
    --count;
  }
};

std::shared_ptr<TlsLayer::BufferKeepers>& TlsLayer::threadKeepers() {
  thread_local std::shared_ptr<BufferKeepers> keepers = std::make_shared<BufferKeepers>();
  return keepers;
}

void TlsLayer::noteRead() {
  // Every context sets SSL_MODE_RELEASE_BUFFERS so that idle connections hold no record buffers;
  // OpenSSL then frees its ~17 KiB read and write buffers after each record and allocates them
  // again for the next one: a malloc/free pair of that size per record each way, per request. A
  // connection that reads twice within kBufferIdle keeps them instead. No timer tells when it
  // goes quiet: the reads of this thread are the clock, each one lets the least recently read
  // connection give its buffers back once that has read nothing for kBufferIdle (and a thread
  // that reads nothing at all holds at most kMaxBufferKeepers connections' worth).
  auto now = transport()->reactor().now();
  BufferKeepers& keepers = *threadKeepers();
  if (keepers_ != nullptr) {
    lastRead_ = now;
    if (keepers.head != this) {
      keepers.unlink(this);
      keepers.pushFront(this);
    }
  } else {
    SSL* ssl = session_->ssl();
    if ((SSL_get_mode(ssl) & SSL_MODE_RELEASE_BUFFERS) == 0) return;  // kept anyway
    bool busy = readSeen_ && now - lastRead_ < kBufferIdle;
    readSeen_ = true;
    lastRead_ = now;
    if (busy) {
      keepers_ = threadKeepers();
      keepers.pushFront(this);
      SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
      if (keepers.count > kMaxBufferKeepers) keepers.tail->releaseKeptBuffers();
    }
  }
  TlsLayer* last = keepers.tail;
  if (last != nullptr && last != this && now - last->lastRead_ >= kBufferIdle) {
    last->releaseKeptBuffers();
  }
}

void TlsLayer::releaseKeptBuffers() {
  if (keepers_ == nullptr) return;
  keepers_->unlink(this);
  keepers_.reset();
  if (!session_) return;
  // No SSL call of this connection is under way (reads and writes return before anything else
  // runs). SSL_free_buffers refuses while part of a record is buffered; the mode then frees that
  // buffer once the record is complete.
  SSL* ssl = session_->ssl();
  SSL_free_buffers(ssl);
  SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
  session_->releaseBuffers();
}

void TlsLayer::closeGracefully() {
  if (kernel_ == Kernel::kWanted || kernel_ == Kernel::kInstalling) {
    closeAfterHandshake_ = true;  // once the kernel has the keys (or we fell back)
    return;
  }
  if (kernel_ == Kernel::kActive && txRekeys_ > 0) {
    closeAfterRekey_ = true;  // what is held back goes out first, under the new key
    return;
  }
  if (kernel_ == Kernel::kActive) {
    flushPlaintext();
    lower_->sendControlRecord(21, std::string_view("\x01\x00", 2));  // close_notify
    transport()->loseConnection();
    return;
  }
  flushPlaintext();
  if (session_ && failure_.isOk()) session_->shutdown();
  flushCiphertext();
  transport()->loseConnection();
}

void TlsLayer::failWith(Status reason) {
  if (failure_.isOk()) failure_ = std::move(reason);
  notifyHandshake(failure_);
}

void TlsLayer::notifyHandshake(Status s) {
  if (options_ && options_->onHandshake) {
    auto cb = std::move(options_->onHandshake);
    options_->onHandshake = nullptr;
    cb(std::move(s));
  }
}

void TlsLayer::connectionLost(const Status& reason) {
  lost_ = true;
  handshakeTimer_.cancel();
  releaseKeptBuffers();
  Status r = failure_;
  if (r.isOk()) {
    if (session_ && !session_->handshakeDone() && reason.isCleanClose()) {
      r = Status(Status::Code::kTls, "the peer closed the connection during the TLS handshake");
    } else if (session_ && reason.isCleanClose() && !closing_ && !peerCloseNotify_ &&
               (SSL_get_shutdown(session_->ssl()) & SSL_RECEIVED_SHUTDOWN) == 0) {
      // The connection ended under TLS without the peer's close_notify: what was received may
      // have been cut short (truncation), so it is not an orderly close (Twisted agrees).
      r = Status(Status::Code::kConnectionLost,
                 "the peer closed the connection without a TLS close_notify (data may be "
                 "truncated)");
    } else {
      r = reason;
    }
  }
  notifyHandshake(r);
  while (!files_.empty()) {
    auto done = std::move(files_.front().done);
    files_.pop_front();
    if (done) done(Status(Status::Code::kAborted, "sendFile: the connection closed first"));
  }
  if (app_->transport() != nullptr) app_->deliverConnectionLost(r);
}

void TlsLayer::stopRequested(api::Reactor::Clock::time_point deadline) {
  if (lost_ || closing_ || aborted_ || !failure_.isOk() || app_->transport() == nullptr) return;
  app_->stopRequested(deadline);
}

void TlsLayer::pauseProducing() {
  lowerPaused_ = true;
  app_->pauseProducing();
}

void TlsLayer::resumeProducing() {
  lowerPaused_ = false;
  pumpFile();
  app_->resumeProducing();
}

void TlsLayer::pumpFile() {
  if (files_.empty() && closeAfterFiles_ && !lost_) {
    closeAfterFiles_ = false;
    if (session_ && session_->handshakeDone()) {
      closeGracefully();
    } else {
      closeAfterHandshake_ = true;
    }
    return;
  }
  while (!files_.empty() && !fileReading_ && !lost_ && !aborted_) {
    FileSend& f = files_.front();
    if (f.remaining == 0) {
      FileSend done = std::move(files_.front());
      files_.pop_front();
      if (!done.after.empty()) {
        plainOut_.append(done.after);  // before the next file, whatever comes after it
        flushPlaintext();
      }
      if (done.done) done.done(Status::ok());
      continue;
    }
    if (kernel_ == Kernel::kWanted || kernel_ == Kernel::kInstalling || !session_ ||
        !session_->handshakeDone()) {
      return;  // resumed once the handshake and the kernel hand-over are settled
    }
    if (kernel_ == Kernel::kActive && txRekeys_ > 0) return;  // onTxRekeyed() continues
    if (kernel_ == Kernel::kActive && plainOut_.empty()) {
      // The kernel encrypts: splice the rest, then what was written after it.
      FileSend rest = std::move(files_.front());
      files_.pop_front();
      transport()->sendFile(rest.fd, rest.offset, rest.remaining, std::move(rest.done));
      if (!rest.after.empty()) transport()->write(rest.after);
      continue;
    }
    if (lowerPaused_) return;  // resumeProducing() continues
    fileReading_ = true;
    auto alive = alive_;
    size_t chunk = f.remaining < 65536 ? static_cast<size_t>(f.remaining) : 65536;
    auto onRead = [this, alive](Result<std::string_view> r) {
      if (!*alive) return;
      fileReading_ = false;
      if (files_.empty()) return;
      FileSend& cur = files_.front();
      if (!r || r->empty()) {
        Status why = !r ? r.status()
                        : api::fileEndedEarly(cur.remaining);
        auto done = std::move(cur.done);
        files_.pop_front();
        if (done) done(why);
        upper_.abortConnection();
        return;
      }
      plainOut_.append(*r);  // behind everything written before the file
      cur.offset += r->size();
      cur.remaining -= r->size();
      flushPlaintext();
      pumpFile();
    };
    if (lower_ != nullptr) {
      lower_->readFile(f.fd, f.offset, chunk, std::move(onRead));
    } else {
      api::readFileBlocking(f.fd, f.offset, chunk, std::move(onRead));
    }
    return;
  }
  if (files_.empty() && closeAfterFiles_) pumpFile();
}

// --- the application's transport ---

void TlsLayer::Upper::sendFile(int fd, uint64_t offset, uint64_t length,
                               std::function<void(Status)> done) {
  TlsLayer* l = layer_;
  if (l->closing_ || l->lost_) {
    done(Status(Status::Code::kAborted, "sendFile: the connection is closing"));
    return;
  }
  if (l->kernel_ == Kernel::kActive && l->files_.empty() && l->plainOut_.empty() &&
      l->txRekeys_ == 0) {
    l->transport()->sendFile(fd, offset, length, std::move(done));
    return;
  }
  l->files_.push_back({fd, offset, length, std::move(done), {}});
  l->pumpFile();
}

void TlsLayer::Upper::write(std::string_view data) {
  TlsLayer* l = layer_;
  if (l->closing_ || l->lost_ || data.empty()) return;
  if (!l->files_.empty() && (l->files_.size() > 1 || l->files_.front().remaining > 0)) {
    l->files_.back().after.append(data);  // after the file(s) queued before this write
    return;
  }
  if (l->kernel_ == Kernel::kActive && l->txRekeys_ == 0) {
    l->transport()->write(data);  // plaintext: the kernel makes the records
    return;
  }
  l->plainOut_.append(data);
  if (l->session_ && l->session_->handshakeDone()) {
    if (l->plainOut_.size() >= kMaxRecord * 4) {
      l->flushPlaintext();
    } else {
      l->scheduleFlush();
    }
  }
}

void TlsLayer::Upper::writeSequence(std::span<const std::string_view> parts) {
  for (auto p : parts) write(p);
}

void TlsLayer::Upper::loseConnection() {
  TlsLayer* l = layer_;
  if (l->closing_ || l->lost_) return;
  l->closing_ = true;
  if (!l->files_.empty()) {
    l->closeAfterFiles_ = true;  // pumpFile() closes once the last file is out
    return;
  }
  if (l->session_ && l->session_->handshakeDone()) {
    l->closeGracefully();
  } else if (l->failure_.isOk()) {
    l->closeAfterHandshake_ = true;  // queued writes still go out once it completes
  } else {
    l->transport()->loseConnection();
  }
}

void TlsLayer::Upper::abortConnection() {
  TlsLayer* l = layer_;
  l->closing_ = true;
  l->aborted_ = true;
  l->plainOut_.release();
  l->transport()->abortConnection();
}

Address TlsLayer::Upper::getPeer() const { return layer_->transport()->getPeer(); }
Address TlsLayer::Upper::getHost() const { return layer_->transport()->getHost(); }

void TlsLayer::Upper::pauseProducing() {
  layer_->appPaused_ = true;
  layer_->transport()->pauseProducing();
}

void TlsLayer::Upper::resumeProducing() {
  TlsLayer* l = layer_;
  // Forwarded even when this layer did not pause: after startTLS the application may resume a
  // transport it paused before the layer was put under it (e.g. its plaintext writes went over
  // the high-water mark just before the upgrade); otherwise reading would stay paused for good.
  l->transport()->resumeProducing();
  if (!l->appPaused_) return;
  l->appPaused_ = false;
  // Records already decrypted or buffered are delivered without waiting for new input.
  if (l->session_ && l->session_->handshakeDone() && l->session_->hasPendingPlaintext()) {
    auto alive = l->alive_;
    l->transport()->reactor().callSoon([l, alive] {
      if (*alive && !l->lost_) {
        l->readLoop();
      }
    });
  }
}

size_t TlsLayer::Upper::bufferedBytes() const {
  return layer_->plainOut_.size() + layer_->transport()->bufferedBytes();
}

bool TlsLayer::Upper::disconnecting() const {
  return layer_->closing_ || layer_->lost_ || layer_->transport()->disconnecting();
}

api::Reactor& TlsLayer::Upper::reactor() { return layer_->transport()->reactor(); }

std::shared_ptr<X509> TlsLayer::Upper::getPeerCertificate() const {
  auto* s = layer_->session_.get();
  return s && s->handshakeDone() ? s->peerCertificate() : nullptr;
}

std::optional<std::string> TlsLayer::Upper::negotiatedProtocol() const {
  auto* s = layer_->session_.get();
  return s && s->handshakeDone() ? s->negotiatedProtocol() : std::nullopt;
}

std::string TlsLayer::Upper::tlsVersion() const {
  auto* s = layer_->session_.get();
  return s && s->handshakeDone() ? s->version() : "";
}

std::string TlsLayer::Upper::cipher() const {
  auto* s = layer_->session_.get();
  return s && s->handshakeDone() ? s->cipher() : "";
}

api::TlsMode TlsLayer::Upper::tlsMode() const {
  if (layer_->kernel_ == Kernel::kActive) return layer_->transport()->tlsMode();
  return api::TlsMode::kUserspace;
}

bool TlsLayer::Upper::sessionResumed() const {
  auto* s = layer_->session_.get();
  return s && s->handshakeDone() && s->resumed();
}

std::unique_ptr<api::Protocol> TlsContext::wrapForStartTLS(
    std::unique_ptr<api::Protocol> app, std::function<void(Status)> onHandshake) const {
  TlsLayerOptions options;
  options.upgrade = true;
  options.onHandshake = std::move(onHandshake);
  return std::make_unique<TlsLayer>(std::const_pointer_cast<TlsContext>(shared_from_this()),
                                    std::move(app), std::move(options));
}

std::unique_ptr<api::Protocol> TlsFactory::buildProtocol(const Address& peer) {
  auto app = inner_->build(peer);
  if (!app) return nullptr;
  return std::make_unique<TlsLayer>(context_.load(), std::move(app), options_);
}

}  // namespace whorl::tls
