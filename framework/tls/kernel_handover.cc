#include "framework/tls/kernel_handover.h"

#include <openssl/ssl.h>

#include <atomic>
#include <cstring>
#include <string>

#include "framework/base/log.h"
#include "framework/base/tls_wire.h"

namespace whorl::tls {

namespace {
std::atomic<uint64_t> g_userspace{0};
std::atomic<uint64_t> g_kernelTx{0};
std::atomic<uint64_t> g_kernelTxRx{0};
}  // namespace

TlsModeCounts tlsModeCounts() {
  return {g_userspace.load(), g_kernelTx.load(), g_kernelTxRx.load()};
}

Status KernelHandover::start(KtlsMode mode) {
  if (mode == KtlsMode::kOff) return Status::ok();
  api::LowerTransport* lower = host_.lower();
  Status available =
      lower != nullptr
          ? lower->kernelTlsAvailable()
          : Status(Status::Code::kUnavailable, "kernel TLS needs a TCP socket transport");
  if (available.isOk()) {
    // Read exactly record by record during the handshake, so that every byte after it is still
    // in the socket when the kernel takes over.
    state_ = State::kWanted;
    lower->setReadLimit(tlswire::kRecordHeaderSize);
  } else if (mode == KtlsMode::kRequire) {
    return Status(Status::Code::kTls, "ktls=require: " + available.message());
  }
  return Status::ok();
}

void KernelHandover::readToRecordBoundary() {
  size_t need = host_.session()->bytesToRecordBoundary();
  host_.lower()->setReadLimit(need > 0 ? need : tlswire::kRecordHeaderSize);
}

Status KernelHandover::install() {
  if (state_ != State::kWanted) return Status::ok();
  TlsSession& session = *host_.session();
  api::LowerTransport& lower = *host_.lower();
  size_t need = session.bytesToRecordBoundary();
  if (need > 0) {
    // A record is cut: finish it in userspace, then hand over at its end.
    lower.setReadLimit(need);
    return Status::ok();
  }
  lower.setReadLimit(0);
  auto params = kernelTlsParams(session);
  if (!params) return params.status();
  if (SSL_version(session.ssl()) == TLS1_3_VERSION && SSL_is_server(session.ssl()) == 0) {
    // What OpenSSL's own read side expects, to hand it session tickets that the kernel decrypts
    // after the hand-over (see handBackToOpenSSL).
    handBack_ = std::make_unique<Tls13RecordKey>();
    handBack_->cipherType = params->cipherType;
    handBack_->key = params->rx.key;
    handBack_->iv = params->rx.salt + params->rx.iv;
    handBack_->sequence = params->rx.sequence;
  }
  state_ = State::kInstalling;
  api::KernelTlsSetup setup;
  setup.txInfo = params->tx.cryptoInfo;
  setup.rxInfo = params->rx.cryptoInfo;
  auto self = anchor_.ref();
  setup.onControlRecord = [this, self](uint8_t type, std::string_view data) {
    if (self) onControlRecord(type, data);
  };
  lower.startKernelTls(std::move(setup), [this, self](Status s) {
    if (self) host_.kernelInstalled(std::move(s));
  });
  return Status::ok();
}

void KernelHandover::activate(bool rx) {
  state_ = State::kActive;
  rx_ = rx;
  countMode();
  if (!rx_) host_.lower()->setReadLimit(api::LowerTransport::kNoReadLimit);
}

Status KernelHandover::fallBack(KtlsMode mode, const Status& why) {
  if (mode == KtlsMode::kRequire) {
    return Status(Status::Code::kTls, "ktls=require: " + why.message());
  }
  WHORL_LOG(kDebug, "kernel TLS not used for %s: %s",
            host_.transportBelow().getPeer().toString().c_str(), why.message().c_str());
  state_ = State::kOff;
  host_.session()->setRecordCounting(false);
  countMode();
  host_.lower()->setReadLimit(api::LowerTransport::kNoReadLimit);
  return Status::ok();
}

void KernelHandover::countMode() {
  if (modeCounted_) return;
  modeCounted_ = true;
  if (state_ != State::kActive) {
    g_userspace.fetch_add(1, std::memory_order_relaxed);
  } else if (rx_) {
    g_kernelTxRx.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_kernelTx.fetch_add(1, std::memory_order_relaxed);
  }
}

void KernelHandover::onControlRecord(uint8_t type, std::string_view data) {
  if (type == tlswire::kAlert && data.size() >= 2) {
    auto desc = static_cast<unsigned char>(data[1]);
    if (desc == tlswire::kCloseNotifyDescription) {  // answer it and close
      peerCloseNotify_ = true;
      host_.kernelPeerClosed();
      return;
    }
    host_.failWith(Status(Status::Code::kTls, std::string("the peer sent a TLS alert: ") +
                                                  SSL_alert_desc_string_long(desc)));
    host_.transportBelow().loseConnection();
    return;
  }
  if (type == tlswire::kHandshake && !data.empty()) {  // post-handshake messages
    auto msg = static_cast<unsigned char>(data[0]);
    if (msg == tlswire::kNewSessionTicket) {
      // NewSessionTicket after the kernel took over: give it to OpenSSL so that the client can
      // resume with it, as it would in userspace.
      handBackToOpenSSL(data);
      return;
    }
    // KeyUpdate (RFC 8446 §4.6.3): header, then request_update; the last message of its record.
    if (msg == tlswire::kKeyUpdate && SSL_version(host_.session()->ssl()) == TLS1_3_VERSION &&
        data.size() == tlswire::kKeyUpdateHeader.size() + 1 &&
        data.substr(0, tlswire::kKeyUpdateHeader.size()) == tlswire::kKeyUpdateHeader &&
        static_cast<unsigned char>(data.back()) <= tlswire::kUpdateRequested) {
      onPeerKeyUpdate(static_cast<unsigned char>(data.back()) == tlswire::kUpdateRequested);
      return;
    }
  }
  host_.failWith(
      Status(Status::Code::kTls, "kernel TLS: unexpected record of type " + std::to_string(type)));
  host_.transportBelow().loseConnection();
}

void KernelHandover::onPeerKeyUpdate(bool updateRequested) {
  // The peer's records after this one use its next traffic secret: the kernel holds them back
  // (EKEYEXPIRED) until it has the matching key. Kernels before 6.14 cannot take a second key.
  TlsSession& session = *host_.session();
  api::LowerTransport& lower = *host_.lower();
  bool server = SSL_is_server(session.ssl()) == 1;
  auto rx = nextKernelTlsKey(session, /*clientSecret=*/server);
  Status s = rx ? lower.rekeyKernelTlsRx(rx->cryptoInfo) : rx.status();
  if (rx) explicit_bzero(rx->cryptoInfo.data(), rx->cryptoInfo.size());
  if (!s.isOk()) {
    host_.failWith(Status(Status::Code::kTls,
                          "the peer sent a TLS KeyUpdate, which kernel TLS cannot follow on this "
                          "kernel (rekeying needs Linux 6.14; " +
                              s.message() + "): connection closed"));
    lower.sendControlRecord(tlswire::kAlert, tlswire::kUnexpectedMessage);
    host_.transportBelow().loseConnection();
    return;
  }
  WHORL_LOG(kDebug, "kernel TLS: %s updated its key%s",
            host_.transportBelow().getPeer().toString().c_str(),
            updateRequested ? " and asked us to update ours" : "");
  // Closing: our close_notify ends our side anyway.
  if (!updateRequested || host_.closing()) return;
  // Ours: a KeyUpdate (update_not_requested) under the current key, then the next key, before
  // any more application data.
  auto tx = nextKernelTlsKey(session, /*clientSecret=*/!server);
  if (!tx) {
    host_.failWith(tx.status());
    host_.transportBelow().loseConnection();
    return;
  }
  ++txRekeys_;
  auto self = anchor_.ref();
  lower.rekeyKernelTlsTx(tlswire::kHandshake, tlswire::kKeyUpdateNotRequested,
                         std::move(tx->cryptoInfo), [this, self](Status st) {
                           if (self) onTxRekeyed(std::move(st));
                         });
}

void KernelHandover::onTxRekeyed(Status s) {
  --txRekeys_;
  if (!s.isOk()) {
    host_.failWith(Status(Status::Code::kTls, "kernel TLS: after our KeyUpdate: " + s.message()));
    return;  // the transport closes
  }
  if (txRekeys_ > 0) return;
  host_.kernelRekeyed();
}

void KernelHandover::handBackToOpenSSL(std::string_view message) {
  if (!handBack_ || handBack_->key.empty() || host_.session() == nullptr) return;
  // Re-encrypt the message as the record OpenSSL expects next. OpenSSL's read key and sequence
  // are still those of the hand-over: the kernel's later rekeys and application records never
  // reached it.
  auto record = sealTls13Record(*handBack_, tlswire::kHandshake, message);
  if (!record) {
    WHORL_LOG(kDebug, "kernel TLS: could not hand a session ticket back to OpenSSL");
    return;
  }
  ++handBack_->sequence;
  TlsSession& session = *host_.session();
  session.beginInput(*record);
  (void)session.read([](std::string_view) { return true; });  // a ticket carries no data
  session.endInput();
  session.clearOutput();  // the kernel owns the sending side
}

}  // namespace whorl::tls
