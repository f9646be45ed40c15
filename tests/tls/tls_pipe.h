// In-memory test harness for TLS: a manual reactor, a pipe of two transports that moves bytes
// between two protocols (usually two TlsLayers) in chunks of a chosen size, a recording
// application protocol, helpers to find certs/ and parse TLS record headers, and a handshake
// between two I/O-free TlsSessions (handshakeInMemory).
//
//   ManualReactor reactor;
//   auto clientLog = std::make_shared<AppLog>();
//   auto serverLog = std::make_shared<AppLog>();
//   Pipe pipe(reactor, /*chunk=*/1);
//   pipe.connect(std::make_unique<TlsLayer>(clientCtx, std::make_unique<App>(clientLog)),
//                std::make_unique<TlsLayer>(serverCtx, std::make_unique<App>(serverLog)));
//   pipe.pump();                              // until nothing moves
//   EXPECT_EQ(clientLog->handshakes, 1);
//
// Nothing happens on its own: pump() runs the callSoon queue and moves bytes until the system is
// quiet; reactor.advance() fires timers. Each Pipe::End owns its protocol and, like a real
// transport, calls connectionLost exactly once and destroys the protocol right after, so the
// tests observe applications through their shared AppLog. Closing follows TCP: loseConnection
// delivers what was written, then both sides see a clean close (the peer as EOF); abortConnection
// drops unsent bytes, the aborting side sees kAborted and the peer kConnectionLost.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/api/protocol.h"
#include "framework/api/reactor.h"
#include "framework/api/transport.h"
#include "framework/base/address.h"
#include "framework/base/status.h"
#include "framework/tls/certificate.h"
#include "framework/tls/session.h"
#include "tests/fake_transport.h"

namespace whorl::test {

// The path of a file in certs/ (e.g. "test/ca.pem") in the test's runfiles.
inline std::string certPath(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return std::string(srcdir ? srcdir : ".") + "/whorl/certs/" + name;
}

inline std::string readCertFile(const std::string& name) {
  std::ifstream in(certPath(name), std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One handshake between two I/O-free sessions, moving each side's output to the other until both
// are done. Returns the first failure, or an error if 20 rounds did not finish it.
inline Status handshakeInMemory(tls::TlsSession& client, tls::TlsSession& server) {
  bool clientDone = false, serverDone = false;
  // Feeds `from`'s output to `to` (copied: input is read in place, and the output is cleared).
  auto deliver = [](tls::TlsSession& from, tls::TlsSession& to, bool* toDone) {
    std::string bytes(from.output());
    from.clearOutput();
    to.beginInput(bytes);
    bool done = false;
    Status st = to.advanceHandshake(&done);
    to.endInput();
    *toDone = *toDone || done;
    return st;
  };
  for (int i = 0; i < 20 && !(clientDone && serverDone); ++i) {
    bool done = false;
    WHORL_RETURN_IF_ERROR(client.advanceHandshake(&done));
    clientDone = clientDone || done;
    WHORL_RETURN_IF_ERROR(deliver(client, server, &serverDone));
    WHORL_RETURN_IF_ERROR(deliver(server, client, &clientDone));
  }
  if (!(clientDone && serverDone)) {
    return Status(Status::Code::kTls, "the handshake did not finish");
  }
  return Status::ok();
}

// A callSoon queue and callLater timers that run only when the test says so.
// The manual reactor of tests/fake_transport.h: callSoon runs on runSoon(), timers on advance().
using ManualReactor = FakeReactor;

// Two connected transports.
class Pipe {
 public:
  class End final : public api::Transport {
   public:
    End(Pipe* pipe, Address host, Address peer) : pipe_(pipe), host_(host), peer_(peer) {}

    void write(std::string_view data) override {
      if (aborted_ || lost_ || data.empty()) return;
      outbox_.append(data);
      ++writeCalls_;
      bytesWritten_ += data.size();
      if (recordWire_) wire_.append(data);
    }
    void loseConnection() override {
      ++loseConnectionCalls_;
      closing_ = true;
    }
    void abortConnection() override {
      ++abortConnectionCalls_;
      aborted_ = true;
      outbox_.clear();
    }
    Address getPeer() const override { return peer_; }
    Address getHost() const override { return host_; }
    void pauseProducing() override { paused_ = true; }
    void resumeProducing() override { paused_ = false; }
    size_t bufferedBytes() const override { return outbox_.size(); }
    bool disconnecting() const override { return closing_ || aborted_ || lost_; }
    api::Reactor& reactor() override { return pipe_->reactor_; }

    api::Protocol* protocol() const { return protocol_.get(); }
    bool lost() const { return lost_; }
    // Everything this side wrote (if recording), and counters.
    const std::string& wire() const { return wire_; }
    void setRecordWire(bool on) { recordWire_ = on; }
    size_t bytesWritten() const { return bytesWritten_; }
    int writeCalls() const { return writeCalls_; }
    int loseConnectionCalls() const { return loseConnectionCalls_; }
    int abortConnectionCalls() const { return abortConnectionCalls_; }
    bool paused() const { return paused_; }
    // Bytes written and not yet delivered to the peer.
    const std::string& outbox() const { return outbox_; }

   private:
    friend class Pipe;
    void lose(Status reason) {
      if (lost_) return;
      lost_ = true;
      if (!protocol_) return;  // a side without a protocol just goes away
      auto p = std::move(protocol_);
      p->connectionLost(reason);
      // p is destroyed here, as a real transport frees its protocol after connectionLost.
    }

    Pipe* pipe_;
    Address host_;
    Address peer_;
    std::unique_ptr<api::Protocol> protocol_;
    std::string outbox_;
    std::string wire_;
    bool recordWire_ = true;
    size_t bytesWritten_ = 0;
    int writeCalls_ = 0;
    int loseConnectionCalls_ = 0;
    int abortConnectionCalls_ = 0;
    bool closing_ = false;
    bool aborted_ = false;
    bool paused_ = false;
    bool lost_ = false;
    bool eofPending_ = false;  // the peer closed; held while holdEof
  };

  // `chunk`: the most bytes handed to one dataReceived() call.
  Pipe(ManualReactor& reactor, size_t chunk)
      : reactor_(reactor),
        chunk_(chunk),
        client_(this, Address::loopbackIPv4(40000), Address::loopbackIPv4(8000)),
        server_(this, Address::loopbackIPv4(8000), Address::loopbackIPv4(40000)) {}
  ~Pipe() {
    // Protocols still attached are dropped without callbacks (the test is over).
    client_.protocol_.reset();
    server_.protocol_.reset();
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  // Attaches both protocols: the server's connectionMade first (it was listening), then the
  // client's. Either may be null for a side that does nothing (a silent peer).
  void connect(std::unique_ptr<api::Protocol> client, std::unique_ptr<api::Protocol> server) {
    server_.protocol_ = std::move(server);
    client_.protocol_ = std::move(client);
    if (server_.protocol_) server_.protocol_->makeConnection(&server_);
    if (client_.protocol_) client_.protocol_->makeConnection(&client_);
  }

  End& client() { return client_; }
  End& server() { return server_; }
  void setChunk(size_t chunk) { chunk_ = chunk; }
  // While set, a side whose peer closed cleanly is not told (no connectionLost) until released.
  void setHoldEof(bool hold) { holdEof_ = hold; }

  // Runs callSoon callbacks and moves bytes both ways until nothing changes (or `maxRounds`).
  // Returns the number of rounds that made progress.
  int pump(int maxRounds = 1000000) {
    int rounds = 0;
    while (rounds < maxRounds) {
      bool progress = reactor_.runSoon();
      progress |= deliver(client_, server_);
      progress |= deliver(server_, client_);
      progress |= settle(client_, server_);
      progress |= settle(server_, client_);
      if (!progress) break;
      ++rounds;
    }
    return rounds;
  }

  // Delivers the bytes waiting in `from` to its peer without running anything else.
  bool deliverFromClient() { return deliver(client_, server_); }
  bool deliverFromServer() { return deliver(server_, client_); }

 private:
  bool deliver(End& from, End& to) {
    if (from.outbox_.empty()) return false;
    if (to.lost_ || !to.protocol_) {
      from.outbox_.clear();  // the peer is gone: the bytes are lost
      return true;
    }
    if (to.paused_ || to.aborted_) return false;
    std::string data = std::move(from.outbox_);
    from.outbox_.clear();
    size_t off = 0;
    while (off < data.size() && to.protocol_ && !to.lost_ && !to.paused_ && !to.aborted_) {
      size_t n = std::min(chunk_, data.size() - off);
      // A fresh heap copy per call: a layer that kept a pointer past the call trips ASan.
      std::string piece = data.substr(off, n);
      off += n;
      to.protocol_->dataReceived(piece);
    }
    if (off < data.size() && to.protocol_ && !to.lost_ && !to.aborted_) {
      from.outbox_.insert(0, data.substr(off));  // paused: keep the rest, in order
    }
    return true;
  }

  bool settle(End& e, End& peer) {
    if (e.lost_) return false;
    if (e.aborted_) {
      e.lose(Status(Status::Code::kAborted, "connection aborted"));
      peer.outbox_.clear();
      peer.lose(Status(Status::Code::kConnectionLost, "connection reset by peer"));
      return true;
    }
    if (e.closing_ && e.outbox_.empty()) {
      e.lose(Status::connectionDone());
      peer.eofPending_ = true;
      return true;
    }
    // EOF comes after every byte the peer sent, and (like TCP) waits while reading is paused.
    if (e.eofPending_ && !holdEof_ && !e.paused_ && peer.outbox_.empty()) {
      e.lose(Status::connectionDone());
      return true;
    }
    return false;
  }

  ManualReactor& reactor_;
  size_t chunk_;
  End client_;
  End server_;
  bool holdEof_ = false;
};

// What an application protocol saw, kept beyond the protocol's lifetime.
struct AppLog {
  int connectionMade = 0;
  int handshakes = 0;
  int lostCalls = 0;
  std::vector<std::string> events;  // "made", "handshake", "data", "lost"
  std::string received;
  std::optional<Status> lost;
  // Recorded at handshakeCompleted().
  std::string tlsVersion;
  std::string cipher;
  std::optional<std::string> protocol;
  bool resumed = false;
  bool isTLS = false;
  tls::Certificate peerCertificate;
  // Recorded at connectionMade().
  std::string versionAtMade;
  bool peerCertAtMade = false;
};

// An application protocol that records into an AppLog and runs optional hooks.
class App : public api::Protocol {
 public:
  explicit App(std::shared_ptr<AppLog> log) : log_(std::move(log)) {}

  void connectionMade() override {
    ++log_->connectionMade;
    log_->events.push_back("made");
    log_->versionAtMade = transport()->tlsVersion();
    log_->peerCertAtMade = transport()->getPeerCertificate() != nullptr;
    if (onMade) onMade(*this);
  }
  void handshakeCompleted() override {
    ++log_->handshakes;
    log_->events.push_back("handshake");
    log_->tlsVersion = transport()->tlsVersion();
    log_->cipher = transport()->cipher();
    log_->protocol = transport()->negotiatedProtocol();
    log_->resumed = transport()->sessionResumed();
    log_->isTLS = transport()->isTLS();
    log_->peerCertificate = tls::Certificate(transport()->getPeerCertificate());
    if (onHandshake) onHandshake(*this);
  }
  void dataReceived(std::string_view data) override {
    if (log_->events.empty() || log_->events.back() != "data") log_->events.push_back("data");
    if (keepReceived) log_->received.append(data);
    if (onData) onData(*this, data);
    if (echo) transport()->write(data);
  }
  void connectionLost(const Status& reason) override {
    ++log_->lostCalls;
    log_->events.push_back("lost");
    log_->lost = reason;
  }

  std::function<void(App&)> onMade;
  std::function<void(App&)> onHandshake;
  std::function<void(App&, std::string_view)> onData;
  bool echo = false;
  bool keepReceived = true;

 private:
  std::shared_ptr<AppLog> log_;
};

// TLS record headers in `wire` (content type, length), stopping at an incomplete record.
struct RecordHeader {
  int type;
  size_t length;
};
inline std::vector<RecordHeader> parseRecords(std::string_view wire) {
  std::vector<RecordHeader> out;
  while (wire.size() >= 5) {
    int type = static_cast<unsigned char>(wire[0]);
    size_t len = (static_cast<size_t>(static_cast<unsigned char>(wire[3])) << 8) |
                 static_cast<unsigned char>(wire[4]);
    if (wire.size() < 5 + len) break;
    out.push_back({type, len});
    wire.remove_prefix(5 + len);
  }
  return out;
}

}  // namespace whorl::test
