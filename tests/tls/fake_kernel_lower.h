// FakeLower: an in-memory api::LowerTransport below a TlsLayer that can play the kernel's side
// of kernel TLS, for tests and the tls_layer fuzz target.
//
//   test::FakeReactor reactor;
//   test::FakeLower lower(reactor, {.kernelAvailable = true});
//   tls::TlsLayer layer(kernelContext, std::make_unique<App>());
//   lower.connect(&layer);
//   test::handshakeOverLower(lower, *peer);  // peer: a TlsSession; the kernel installs at turn end
//   EXPECT_EQ(lower.kernelPlaintext(), "...");
//
// It honours read limits, "installs" keys at the end of the turn that asked, then takes
// plaintext writes (kernelPlaintext()) and control records as the kernel would; the test hands
// up what the kernel would decrypt. `events` logs what the layer asked of it, in order. The test
// owns the reactor, the lower and the layer; a broken expectation of the fake aborts with why.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "framework/api/lower_transport.h"
#include "framework/api/protocol.h"
#include "framework/base/status.h"
#include "framework/tls/session.h"
#include "tests/fake_transport.h"

namespace whorl::test {

namespace fake_lower_detail {
inline void check(bool ok, const char* why) {
  if (ok) return;
  std::fprintf(stderr, "FakeLower: expectation broken: %s\n", why);
  std::abort();
}

inline std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}
}  // namespace fake_lower_detail

struct LowerOptions {
  bool kernelAvailable = false;
  bool refuseRx = false;       // the kernel takes the sending key only (kKernelTx)
  bool refuseRxRekey = false;  // a kernel before 6.14: no second receive key
};

// An in-memory transport below the layer, with the socket side of kernel TLS played in memory.
class FakeLower final : public api::LowerTransport {
 public:
  FakeLower(FakeReactor& reactor, LowerOptions options)
      : reactor_(reactor), options_(options) {}

  // --- what the test does ---
  void connect(api::Protocol* p) {
    protocol_ = p;
    p->makeConnection(this);
  }
  // Bytes from the peer arrive on the socket (ciphertext; plaintext once the kernel decrypts).
  void receive(std::string_view bytes) {
    socket_.append(bytes);
    deliver();
    turn();
  }
  // One loop turn's end: callbacks, then the turn-end flush, until quiet.
  void turn() {
    for (int i = 0; i < 1000; ++i) {
      bool ran = reactor_.runSoon();
      if (flusher_ != nullptr) {
        api::TurnFlush* f = flusher_;
        flusher_ = nullptr;
        f->flushBeforeSend();
        ran = true;
      }
      if (installing_) {
        if (beforeInstall) {
          auto hook = std::move(beforeInstall);
          beforeInstall = nullptr;
          hook();
        }
        installing_ = false;
        kernel_ = true;
        kernelRx_ = !options_.refuseRx;
        limit_ = kNoReadLimit;  // as TcpTransport: the kernel reads from here on
        events += kernelRx_ ? "kernel installed (tx, rx)\n" : "kernel installed (tx)\n";
        auto done = std::move(installDone_);
        done(Status::ok());
        ran = true;
      }
      deliver();
      if (!ran) return;
    }
    fake_lower_detail::check(false, "a loop turn settles");
  }
  // The kernel hands up a record that is not application data.
  void controlRecord(uint8_t type, std::string_view data) {
    if (!kernelRx_ || !setup_.onControlRecord || lost_) return;
    setup_.onControlRecord(type, data);
    turn();
  }
  void lose(const Status& reason) {
    if (lost_) return;
    lost_ = true;
    protocol_->connectionLost(reason);
  }
  bool kernelRx() const { return kernelRx_; }
  // The kernel decrypts what arrives from now on (installed, or being installed, with RX).
  bool kernelReceives() const { return (kernel_ || installing_) && !options_.refuseRx; }
  bool closed() const { return closing_ || lost_; }
  // Ciphertext written since the last call (for the peer).
  std::string takeCiphertext() {
    std::string out = cipher_.substr(cipherTaken_);
    cipherTaken_ = cipher_.size();
    return out;
  }
  const std::string& ciphertext() const { return cipher_; }
  const std::string& kernelPlaintext() const { return plain_; }
  std::string events;
  // Runs once, in the turn that completes the kernel install, just before it completes: what
  // the application does while the layer waits for the kernel.
  std::function<void()> beforeInstall;

  // --- api::Transport ---
  void write(std::string_view data) override {
    if (closing_ || lost_) return;
    (kernel_ ? plain_ : cipher_).append(data);
  }
  void loseConnection() override {
    if (!closing_) events += "loseConnection\n";
    closing_ = true;
  }
  void abortConnection() override {
    if (!closing_) events += "abortConnection\n";
    closing_ = true;
  }
  Address getPeer() const override { return Address::loopbackIPv4(40000); }
  Address getHost() const override { return Address::loopbackIPv4(8443); }
  void pauseProducing() override { paused_ = true; }
  void resumeProducing() override { paused_ = false; }
  size_t bufferedBytes() const override { return 0; }
  bool disconnecting() const override { return closing_; }
  api::Reactor& reactor() override { return reactor_; }
  api::TlsMode tlsMode() const override {
    if (!kernel_) return api::TlsMode::kNone;
    return kernelRx_ ? api::TlsMode::kKernelTxRx : api::TlsMode::kKernelTx;
  }

  // --- api::LowerTransport ---
  void writeBuffer(ByteBuffer& bytes) override {
    write(bytes.view());
    bytes.clear();
  }
  bool flushBeforeSend(api::TurnFlush* flusher) override {
    if (closing_) return false;
    flusher_ = flusher;
    return true;
  }
  void readFile(int fd, uint64_t offset, size_t length,
                std::function<void(Result<std::string_view>)> done) override {
    api::readFileBlocking(fd, offset, length, std::move(done));
  }
  Status kernelTlsAvailable() const override {
    if (options_.kernelAvailable) return Status::ok();
    return Status(Status::Code::kUnavailable, "no kernel TLS here");
  }
  void setReadLimit(size_t limit) override { limit_ = limit; }
  void startKernelTls(api::KernelTlsSetup setup, std::function<void(Status)> done) override {
    fake_lower_detail::check(!installing_ && !kernel_, "kernel TLS is installed once");
    fake_lower_detail::check(limit_ == 0, "reads stop at the hand-over");
    events += "kernel install requested\n";
    setup_ = std::move(setup);
    installing_ = true;
    installDone_ = std::move(done);
    // Bytes the peer sent after the hand-over point belong to the kernel; the test supplies
    // what the kernel would make of them.
    if (!options_.refuseRx) socket_.clear();
  }
  void sendControlRecord(uint8_t type, std::string_view data) override {
    fake_lower_detail::check(kernel_, "control records are sent in kernel mode only");
    events += "control record " + std::to_string(type) + " '" + fake_lower_detail::escape(data) + "' after " +
              std::to_string(plain_.size()) + " plaintext bytes\n";
  }
  Status rekeyKernelTlsRx(std::string_view rxInfo) override {
    events += "rekey rx (" + std::to_string(rxInfo.size()) + " bytes)\n";
    if (options_.refuseRxRekey) return Status(Status::Code::kUnavailable, "EBUSY");
    return Status::ok();
  }
  void rekeyKernelTlsTx(uint8_t type, std::string_view record, std::string txInfo,
                        std::function<void(Status)> done) override {
    events += "rekey tx: record " + std::to_string(type) + " '" + fake_lower_detail::escape(record) + "' (" +
              std::to_string(txInfo.size()) + " bytes)\n";
    reactor_.callSoon([done = std::move(done)] { done(Status::ok()); });
  }

 private:
  // Delivers what the socket holds, no more than the read limit allows.
  void deliver() {
    while (!socket_.empty() && limit_ > 0 && !paused_ && !lost_) {
      size_t n = std::min(socket_.size(), limit_);
      if (limit_ != kNoReadLimit) limit_ -= n;
      std::string chunk = socket_.substr(0, n);
      socket_.erase(0, n);
      protocol_->dataReceived(chunk);
    }
  }

  FakeReactor& reactor_;
  LowerOptions options_;
  api::Protocol* protocol_ = nullptr;
  api::TurnFlush* flusher_ = nullptr;
  std::string socket_;  // received, not yet delivered
  size_t limit_ = kNoReadLimit;
  bool paused_ = false;
  bool closing_ = false;
  bool lost_ = false;
  bool installing_ = false;
  bool kernel_ = false;
  bool kernelRx_ = false;
  std::function<void(Status)> installDone_;
  api::KernelTlsSetup setup_;
  std::string cipher_;
  size_t cipherTaken_ = 0;
  std::string plain_;
};

// Moves handshake bytes both ways until nothing moves.
inline void handshakeOverLower(FakeLower& lower, tls::TlsSession& peer) {
  bool done = false;
  for (int round = 0; round < 20; ++round) {
    std::string fromLayer = lower.takeCiphertext();
    if (!fromLayer.empty()) {
      peer.beginInput(fromLayer);
      if (!peer.handshakeDone()) {
        if (!peer.advanceHandshake(&done).isOk()) return;
      }
      if (peer.handshakeDone()) (void)peer.read([](std::string_view) { return true; });
      peer.endInput();
    } else if (round == 0) {
      (void)peer.advanceHandshake(&done);  // a client peer speaks first
    }
    std::string toLayer(peer.output());
    peer.clearOutput();
    if (fromLayer.empty() && toLayer.empty() && round > 0) return;
    // Records the kernel would decrypt (TLS 1.3 session tickets) come as control records, which
    // the events supply; the ciphertext cannot be shown to the layer as plaintext.
    if (!toLayer.empty() && !lower.closed() && !lower.kernelReceives()) lower.receive(toLayer);
  }
}

}  // namespace whorl::test
