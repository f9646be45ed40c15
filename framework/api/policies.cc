#include "framework/api/policies.h"

#include <cstdio>

#include "framework/api/lower_transport.h"
#include "framework/api/timeout_mixin.h"

namespace whorl::api {

namespace {

std::string seconds(Reactor::Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", std::chrono::duration<double>(d).count());
  return text;
}

// Holds a place among LimitTotalConnectionsFactory's until the connection is lost.
class LimitedProtocol final : public ProtocolWrapper {
 public:
  LimitedProtocol(std::unique_ptr<Protocol> wrapped,
                  std::shared_ptr<LimitTotalConnectionsFactory::Counts> counts)
      : ProtocolWrapper(std::move(wrapped)), counts_(std::move(counts)) {}
  // Built but never connected (a layer above refused it): the place is still given back.
  ~LimitedProtocol() override { release(); }
  void connectionLost(const Status& reason) override {
    // The socket is closed by now. The place is given back after the wrapped protocol has seen
    // the loss, so that whoever gets the place next also sees what that protocol did about it
    // (counted it, logged it).
    ProtocolWrapper::connectionLost(reason);
    release();
  }

 private:
  void release() {
    if (counts_) counts_->open.fetch_sub(1, std::memory_order_relaxed);
    counts_.reset();
  }
  std::shared_ptr<LimitTotalConnectionsFactory::Counts> counts_;
};

// TimeoutFactory's protocol: the idle limit is TimeoutMixin's, the total one a timer of its own.
class TimeoutProtocol final : public TimeoutMixin<ProtocolWrapper> {
 public:
  TimeoutProtocol(std::unique_ptr<Protocol> wrapped, TimeoutOptions options)
      : TimeoutMixin(std::move(wrapped)), options_(options) {}
  ~TimeoutProtocol() override { total_.cancel(); }

  void connectionMade() override {
    if (options_.idle.count() > 0) setTimeout(options_.idle);
    if (options_.total.count() > 0) {
      total_ = transport()->reactor().callLater(options_.total, [this] {
        expire("connection time limit: still open after " + seconds(options_.total) + " s");
      });
    }
    TimeoutMixin::connectionMade();
  }
  void dataReceived(std::string_view data) override {
    resetTimeout();  // stores the time; no timer work per read
    TimeoutMixin::dataReceived(data);
  }
  void timeoutConnection() override {
    expire("idle timeout: no data received for " + seconds(options_.idle) + " s");
  }
  void connectionLost(const Status& reason) override {
    total_.cancel();
    // The transport saw an orderly close (ours); the protocol learns which limit it was. A
    // failure after it (the peer never read what was sent: a send timeout) stays as it is.
    if (!cause_.empty() && reason.isCleanClose()) {
      TimeoutMixin::connectionLost(Status(Status::Code::kTimeout, cause_));
    } else {
      TimeoutMixin::connectionLost(reason);
    }
  }

 private:
  void expire(std::string cause) {
    if (!cause_.empty() || transport()->disconnecting()) return;
    cause_ = std::move(cause);
    total_.cancel();
    setTimeout(Duration::zero());
    transport()->loseConnection();
  }

  TimeoutOptions options_;
  DelayedCall total_;
  std::string cause_;  // set once a limit closed the connection
};

}  // namespace

// --- ProtocolWrapper ---

ProtocolWrapper::ProtocolWrapper(std::unique_ptr<Protocol> wrapped)
    : wrapped_(std::move(wrapped)) {}

ProtocolWrapper::~ProtocolWrapper() = default;

void ProtocolWrapper::connectionMade() { wrapped_->makeConnection(&upper_); }
void ProtocolWrapper::dataReceived(std::string_view data) { wrapped_->dataReceived(data); }
void ProtocolWrapper::connectionLost(const Status& reason) {
  if (wrapped_->transport() != nullptr) wrapped_->deliverConnectionLost(reason);
}
void ProtocolWrapper::handshakeCompleted() { wrapped_->handshakeCompleted(); }
void ProtocolWrapper::stopRequested(Reactor::Clock::time_point deadline) {
  wrapped_->stopRequested(deadline);
}
void ProtocolWrapper::pauseProducing() { wrapped_->pauseProducing(); }
void ProtocolWrapper::resumeProducing() { wrapped_->resumeProducing(); }
std::string ProtocolWrapper::takeUnprocessedInput() { return wrapped_->takeUnprocessedInput(); }

void ProtocolWrapper::Upper::write(std::string_view data) { t().write(data); }
void ProtocolWrapper::Upper::writeSequence(std::span<const std::string_view> parts) {
  t().writeSequence(parts);
}
void ProtocolWrapper::Upper::loseConnection() { t().loseConnection(); }
void ProtocolWrapper::Upper::abortConnection() { t().abortConnection(); }
Address ProtocolWrapper::Upper::getPeer() const { return t().getPeer(); }
Address ProtocolWrapper::Upper::getHost() const { return t().getHost(); }
void ProtocolWrapper::Upper::pauseProducing() { t().pauseProducing(); }
void ProtocolWrapper::Upper::resumeProducing() { t().resumeProducing(); }
size_t ProtocolWrapper::Upper::bufferedBytes() const { return t().bufferedBytes(); }
bool ProtocolWrapper::Upper::disconnecting() const { return t().disconnecting(); }
Reactor& ProtocolWrapper::Upper::reactor() { return t().reactor(); }
bool ProtocolWrapper::Upper::isTLS() const { return t().isTLS(); }
std::shared_ptr<X509> ProtocolWrapper::Upper::getPeerCertificate() const {
  return t().getPeerCertificate();
}
std::optional<std::string> ProtocolWrapper::Upper::negotiatedProtocol() const {
  return t().negotiatedProtocol();
}
std::string ProtocolWrapper::Upper::tlsVersion() const { return t().tlsVersion(); }
std::string ProtocolWrapper::Upper::cipher() const { return t().cipher(); }
bool ProtocolWrapper::Upper::sessionResumed() const { return t().sessionResumed(); }
TlsMode ProtocolWrapper::Upper::tlsMode() const { return t().tlsMode(); }
Status ProtocolWrapper::Upper::startTLS(std::shared_ptr<const TlsUpgrade> tls,
                                        StartTLSOptions options) {
  // The layer goes under the wrapper, which then has the TLS transport as its own: the wrapped
  // protocol keeps writing to the wrapper, now through TLS.
  return t().startTLS(std::move(tls), std::move(options));
}
void ProtocolWrapper::Upper::sendFile(int fd, uint64_t offset, uint64_t length,
                                      std::function<void(Status)> done) {
  t().sendFile(fd, offset, length, std::move(done));
}
LowerTransport* ProtocolWrapper::Upper::lower() { return lowerTransportOf(t()); }

// --- factories ---

std::unique_ptr<Protocol> WrappingFactory::buildProtocol(const Address& peer) {
  auto protocol = wrapped_->build(peer);
  if (!protocol) return nullptr;
  return wrap(std::move(protocol));
}

void WrappingFactory::stopRequested(Reactor::Clock::time_point deadline) {
  wrapped_->stopRequested(deadline);
}

LimitTotalConnectionsFactory::LimitTotalConnectionsFactory(std::shared_ptr<Factory> wrapped,
                                                           uint64_t limit)
    : WrappingFactory(std::move(wrapped)), limit_(limit), counts_(std::make_shared<Counts>()) {}

std::unique_ptr<Protocol> LimitTotalConnectionsFactory::buildProtocol(const Address& peer) {
  // Take the place first: two shards accepting at once cannot both get the last one.
  if (counts_->open.fetch_add(1, std::memory_order_relaxed) >= limit_) {
    counts_->open.fetch_sub(1, std::memory_order_relaxed);
    counts_->refused.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto protocol = WrappingFactory::buildProtocol(peer);
  if (!protocol) counts_->open.fetch_sub(1, std::memory_order_relaxed);
  return protocol;
}

std::unique_ptr<Protocol> LimitTotalConnectionsFactory::wrap(std::unique_ptr<Protocol> protocol) {
  return std::make_unique<LimitedProtocol>(std::move(protocol), counts_);
}

std::unique_ptr<Protocol> TimeoutFactory::wrap(std::unique_ptr<Protocol> protocol) {
  return std::make_unique<TimeoutProtocol>(std::move(protocol), options_);
}

}  // namespace whorl::api
