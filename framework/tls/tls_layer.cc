#include "framework/tls/tls_layer.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <string>

#include "framework/base/tls_wire.h"

namespace whorl::tls {

TlsLayer::TlsLayer(std::shared_ptr<TlsContext> context, std::unique_ptr<api::Protocol> app,
                   TlsLayerOptions options)
    : context_(std::move(context)), app_(std::move(app)) {
  if (options.upgrade || options.onHandshake || options.connectAfterHandshake) {
    options_ = std::make_unique<TlsLayerOptions>(std::move(options));
  }
}

TlsLayer::~TlsLayer() {
  anchor_.clear();
  handshakeTimer_.cancel();
  keeper_.release();
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
  auto self = anchor_.ref();
  auto timeout = context_->handshakeTimeout();
  handshakeTimer_ = transport()->reactor().callLater(timeout, [this, self, timeout] {
    if (!self || session_->handshakeDone()) return;
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
  if (Status s = kernel_.start(context_->ktls()); !s.isOk()) {
    failWith(std::move(s));
    transport()->abortConnection();
    return;
  }
  if (lost_) return;
  // Record counting serves only the kernel hand-over.
  if (kernel_.off()) session_->setRecordCounting(false);
  advance();
}

void TlsLayer::dataReceived(std::string_view data) {
  if (!session_ || !failure_.isOk()) return;
  if (kernel_.receives()) {
    // The kernel decrypted it.
    if (!closing()) app_->dataReceived(data);
    return;
  }
  if (kernel_.off() && session_->handshakeDone()) {
    keeper_.noteRead(*session_, transport()->reactor().now());
  }
  session_->beginInput(data);
  advance();
  session_->endInput();
  flushCiphertext();
  if (kernel_.wanted() && !lost_ && failure_.isOk()) {
    if (!session_->handshakeDone()) {
      kernel_.readToRecordBoundary();
    } else if (Status s = kernel_.install(); !s.isOk()) {
      kernelFallback(std::move(s));
    }
  }
}

void TlsLayer::kernelInstalled(Status s) {
  if (lost_) return;
  if (!s.isOk()) {
    kernelFallback(std::move(s));
    return;
  }
  kernel_.activate(transport()->tlsMode() == api::TlsMode::kKernelTxRx);
  // What the application wrote meanwhile goes to the kernel as plaintext.
  if (!plainOut_.empty() && !aborted_) transport()->write(plainOut_.view());
  plainOut_.release();
  session_->releaseBuffers();
  // A close waiting on queued files is pumpFiles()'s to finish. Any other close (the peer's
  // close_notify answered, an abort) is done: closing again would send a second close_notify.
  pumpFiles();
  if (close_ == Close::kAfterHandshake) closeAfterWait();
}

void TlsLayer::kernelFallback(Status why) {
  if (Status s = kernel_.fallBack(context_->ktls(), why); !s.isOk()) {
    failWith(std::move(s));
    transport()->abortConnection();
    return;
  }
  flushPlaintext();
  pumpFiles();
  readLoop();
  flushCiphertext();
  if (close_ == Close::kAfterHandshake) closeAfterWait();
}

void TlsLayer::kernelPeerClosed() {
  if (closing()) return;
  close_ = Close::kClosing;
  lower_->sendControlRecord(tlswire::kAlert, tlswire::kCloseNotify);
  transport()->loseConnection();
}

void TlsLayer::kernelRekeyed() {
  if (lost_) return;
  flushPlaintext();  // what the application wrote meanwhile, under the new key
  pumpFiles();
  if (close_ == Close::kAfterRekey) closeAfterWait();
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
  if (kernel_.wanted()) return;  // writes wait for the kernel (KernelHandover::install)
  kernel_.countMode();
  flushPlaintext();
  pumpFiles();
  if (close_ == Close::kAfterHandshake) closeAfterWait();
}

void TlsLayer::readLoop() {
  if (appPaused_ || lost_ || !failure_.isOk()) return;
  auto result = session_->read([this](std::string_view plain) {
    app_->dataReceived(plain);
    return !appPaused_ && !lost_ && !closing();
  });
  switch (result) {
    case TlsSession::ReadResult::kWantMore:
    case TlsSession::ReadResult::kStopped:
      break;
    case TlsSession::ReadResult::kPeerClosed:
      // The peer's close_notify: answer with ours and close.
      if (!closing()) {
        close_ = Close::kClosing;
        flushPlaintext();
        if (kernel_.active()) {
          lower_->sendControlRecord(tlswire::kAlert, tlswire::kCloseNotify);
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
  if (!session_ || !session_->handshakeDone() || plainOut_.empty() || !failure_.isOk() ||
      aborted_ || kernel_.pending() || kernel_.rekeying()) {
    return;
  }
  if (kernel_.active()) {
    transport()->write(plainOut_.view());
    plainOut_.release();
    return;
  }
  // Full records: one SSL_write per 16 KiB of what the application wrote this turn.
  while (!plainOut_.empty()) {
    size_t n = std::min(plainOut_.size(), tlswire::kMaxPlaintext);
    Status s = session_->write(std::string_view(plainOut_.data(), n));
    if (!s.isOk()) {
      failWith(s);
      transport()->abortConnection();
      return;
    }
    plainOut_.consume(n);
  }
  // Keep a buffer of up to one record for reuse.
  if (plainOut_.capacity() > tlswire::kMaxPlaintext) plainOut_.release();
  flushCiphertext();
}

void TlsLayer::flushCiphertext() {
  if (!session_ || lost_) return;
  if (kernel_.active()) {
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
  auto self = anchor_.ref();
  transport()->reactor().callSoon([this, self] {
    if (!self) return;
    flushScheduled_ = false;
    flushPlaintext();
  });
}

void TlsLayer::flushBeforeSend() {
  flushScheduled_ = false;
  flushPlaintext();
}

void TlsLayer::closeGracefully() {
  if (kernel_.pending()) {
    close_ = Close::kAfterHandshake;  // once the kernel has the keys (or we fell back)
    return;
  }
  if (kernel_.active() && kernel_.rekeying()) {
    close_ = Close::kAfterRekey;  // what is held back goes out first, under the new key
    return;
  }
  if (kernel_.active()) {
    flushPlaintext();
    lower_->sendControlRecord(tlswire::kAlert, tlswire::kCloseNotify);
    transport()->loseConnection();
    return;
  }
  flushPlaintext();
  if (session_ && failure_.isOk()) session_->shutdown();
  flushCiphertext();
  transport()->loseConnection();
}

// What a deferred close waited for is done: close now, or wait for the next thing
// (closeGracefully sets close_ again if it must).
void TlsLayer::closeAfterWait() {
  close_ = Close::kClosing;
  closeGracefully();
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
  keeper_.release();
  Status r = failure_;
  if (r.isOk()) {
    if (session_ && !session_->handshakeDone() && reason.isCleanClose()) {
      r = Status(Status::Code::kTls, "the peer closed the connection during the TLS handshake");
    } else if (session_ && reason.isCleanClose() && !closing() && !kernel_.peerClosed() &&
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
  files_.abortAll();
  if (app_->transport() != nullptr) app_->deliverConnectionLost(r);
}

void TlsLayer::stopRequested(api::Reactor::Clock::time_point deadline) {
  if (lost_ || closing() || aborted_ || !failure_.isOk() || app_->transport() == nullptr) return;
  app_->stopRequested(deadline);
}

void TlsLayer::pauseProducing() {
  files_.setPausedBelow(true);
  app_->pauseProducing();
}

void TlsLayer::resumeProducing() {
  files_.setPausedBelow(false);
  pumpFiles();
  app_->resumeProducing();
}

// --- sendFile (FileSender moves the bytes; the layer decides where they go) ---

FileSender::Host::Route TlsLayer::fileRoute() {
  if (lost_ || aborted_) return Route::kStopped;
  // Resumed once the handshake and the kernel hand-over are settled.
  if (kernel_.pending() || !session_ || !session_->handshakeDone()) return Route::kWait;
  if (kernel_.active() && kernel_.rekeying()) return Route::kWait;  // kernelRekeyed() continues
  if (kernel_.active() && plainOut_.empty()) return Route::kSplice;
  return Route::kRead;
}

void TlsLayer::writeFileBytes(std::string_view bytes) {
  plainOut_.append(bytes);
  flushPlaintext();
}

void TlsLayer::pumpFiles() {
  if (!files_.pump() || close_ != Close::kAfterFiles || lost_) return;
  // The last file is out: the close that waited for it goes ahead.
  if (session_ && session_->handshakeDone()) {
    closeAfterWait();
  } else {
    close_ = Close::kAfterHandshake;
  }
}

void TlsLayer::fileFailed() { upper_.abortConnection(); }

// --- the application's transport ---

void TlsLayer::Upper::sendFile(int fd, uint64_t offset, uint64_t length,
                               std::function<void(Status)> done) {
  TlsLayer* l = layer_;
  if (l->closing() || l->lost_) {
    done(Status(Status::Code::kAborted, "sendFile: the connection is closing"));
    return;
  }
  if (l->kernel_.active() && l->files_.empty() && l->plainOut_.empty() &&
      !l->kernel_.rekeying()) {
    l->transport()->sendFile(fd, offset, length, std::move(done));
    return;
  }
  l->files_.queue(fd, offset, length, std::move(done));
  l->pumpFiles();
}

void TlsLayer::Upper::write(std::string_view data) {
  TlsLayer* l = layer_;
  if (l->closing() || l->lost_ || data.empty()) return;
  if (l->files_.holdWrite(data)) return;  // after the file(s) queued before this write
  if (l->kernel_.active() && !l->kernel_.rekeying()) {
    l->transport()->write(data);  // plaintext: the kernel makes the records
    return;
  }
  l->plainOut_.append(data);
  if (l->session_ && l->session_->handshakeDone()) {
    if (l->plainOut_.size() >= tlswire::kMaxPlaintext * 4) {
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
  if (l->closing() || l->lost_) return;
  l->close_ = Close::kClosing;
  if (!l->files_.empty()) {
    l->close_ = Close::kAfterFiles;  // pumpFiles() closes once the last file is out
    return;
  }
  if (l->session_ && l->session_->handshakeDone()) {
    l->closeGracefully();
  } else if (l->failure_.isOk()) {
    l->close_ = Close::kAfterHandshake;  // queued writes still go out once it completes
  } else {
    l->transport()->loseConnection();
  }
}

void TlsLayer::Upper::abortConnection() {
  TlsLayer* l = layer_;
  // A graceful close already waiting keeps its state: the transport closes now anyway.
  if (l->close_ == Close::kOpen) l->close_ = Close::kClosing;
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
    auto self = l->anchor_.ref();
    l->transport()->reactor().callSoon([l, self] {
      if (self && !l->lost_) {
        l->readLoop();
      }
    });
  }
}

size_t TlsLayer::Upper::bufferedBytes() const {
  return layer_->plainOut_.size() + layer_->transport()->bufferedBytes();
}

bool TlsLayer::Upper::disconnecting() const {
  return layer_->closing() || layer_->lost_ || layer_->transport()->disconnecting();
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
  if (layer_->kernel_.active()) return layer_->transport()->tlsMode();
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
