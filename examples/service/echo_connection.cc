#include "examples/service/echo_connection.h"

#include "examples/service/classify.h"
#include "framework/api/transport.h"
#include "framework/base/log.h"
#include "framework/reactor/shard.h"

namespace whorl::service {

namespace {
int currentShard() {
  reactor::Shard* s = reactor::Shard::current();
  return s != nullptr ? s->index() : 0;
}
}  // namespace

EchoConnection::EchoConnection(ServiceState& state, std::shared_ptr<const std::string> listener,
                               bool tls)
    : state_(state), listener_(std::move(listener)), tls_(tls) {}

EchoConnection::~EchoConnection() { releaseSlot(); }

void EchoConnection::releaseSlot() {
  if (!slotHeld_) return;
  slotHeld_ = false;
  state_.open.fetch_sub(1, std::memory_order_relaxed);
}

void EchoConnection::connectionMade() {
  shard_ = currentShard();
  start_ = transport()->reactor().now();
  state_.metrics.accepted.inc(shard_);
  state_.metrics.open.add(shard_, 1);
  if (state_.limits.idleTimeout.count() > 0) setTimeout(state_.limits.idleTimeout);
}

void EchoConnection::dataReceived(std::string_view data) {
  bytesIn_ += data.size();
  bytesOut_ += data.size();
  state_.metrics.bytesReceived.inc(shard_, data.size());
  state_.metrics.bytesSent.inc(shard_, data.size());
  resetTimeout();  // stores the time; no timer work per read
  transport()->write(data);
}

void EchoConnection::handshakeCompleted() {
  handshakeDone_ = true;
  state_.metrics.handshakesOk.inc(shard_);
  if (transport()->sessionResumed()) state_.metrics.handshakesResumed.inc(shard_);
}

void EchoConnection::timeoutConnection() { transport()->loseConnection(); }

void EchoConnection::connectionLost(const Status& reason) {
  TimeoutMixin::connectionLost(reason);
  api::Transport* t = transport();
  std::string why = reason.message();
  std::string_view kind = closeKind(reason);
  if (timedOut()) {
    std::string idle = "no data from the client for " +
                       std::to_string(state_.limits.idleTimeout.count() / 1000.0).substr(0, 6) +
                       " s";
    if (kind == "send_timeout") {
      // The idle close was waiting for the client to take what was sent, and it never did.
      why += " (after the idle timeout: " + idle + ")";
    } else {
      kind = "idle_timeout";
      why = idle;
    }
  }
  if (tls_ && !handshakeDone_) {
    state_.metrics.handshakesFailed.inc(shard_, handshakeFailureKind(reason));
  }
  state_.metrics.closed.inc(shard_, kind);
  state_.metrics.open.add(shard_, -1);
  // The socket is closed by now: a client reconnecting at once must find the place free.
  releaseSlot();
  if (log::enabled(log::Level::kInfo)) {
    auto duration = std::chrono::duration_cast<std::chrono::microseconds>(
        t->reactor().now() - start_);
    std::string peer = t->getPeer().toString();
    std::string version = tls_ ? t->tlsVersion() : "";
    std::string cipher = tls_ ? t->cipher() : "";
    // No record crypto ran for a handshake that never finished.
    std::string mode = !tls_ ? "plain" : handshakeDone_ ? api::toString(t->tlsMode()) : "";
    std::string alpn = tls_ ? t->negotiatedProtocol().value_or("") : "";
    // Names and numbers only: never key material or application bytes.
    log::event(log::Level::kInfo, "connection closed",
               {{"listener", *listener_},
                {"peer", peer},
                {"duration_ms", static_cast<double>(duration.count()) / 1000.0},
                {"bytes_in", bytesIn_},
                {"bytes_out", bytesOut_},
                {"tls_version", version},
                {"cipher", cipher},
                {"tls_mode", mode},
                {"resumed", tls_ && handshakeDone_ && t->sessionResumed()},
                {"alpn", alpn},
                {"kind", kind},
                {"reason", why}});
  }
}

std::unique_ptr<api::Protocol> ServiceFactory::buildProtocol(const Address& peer) {
  (void)peer;
  return std::make_unique<EchoConnection>(state_, listener_, tls_);
}

std::unique_ptr<api::Protocol> AdmissionFactory::buildProtocol(const Address& peer) {
  uint64_t max = state_.limits.maxConnections;
  uint64_t before = state_.open.fetch_add(1, std::memory_order_relaxed);
  if (max != 0 && before >= max) {
    state_.open.fetch_sub(1, std::memory_order_relaxed);
    int shard = currentShard();
    state_.metrics.refusedMaxConnections.inc(shard);
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
    int64_t last = state_.lastRefusalLog.load(std::memory_order_relaxed);
    if (now != last && state_.lastRefusalLog.compare_exchange_strong(last, now)) {
      WHORL_LOG(kWarning,
                "max-connections (%llu) reached: closing new connections (%s and others, see "
                "whorl_connections_refused_total)",
                static_cast<unsigned long long>(max), peer.toString().c_str());
    }
    return nullptr;
  }
  // The place taken above is the EchoConnection's from here; its destructor gives it back.
  auto protocol = inner_->build(peer);
  if (!protocol) state_.open.fetch_sub(1, std::memory_order_relaxed);
  return protocol;
}

}  // namespace whorl::service
