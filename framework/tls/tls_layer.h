// TlsLayer: TLS over any Transport (Twisted's TLSMemoryBIOProtocol).
//
//   // Server side: wrap the application's factory; each connection becomes TCP -> TLS -> app.
//   TLSOptions options = cert.options();
//   auto app = Factory::forProtocol<Echo>();
//   auto tlsFactory = std::make_shared<TlsFactory>(options.context(), app);
//   TCP4ServerEndpoint(runtime, 8000).listen(tlsFactory);   // what SSL4ServerEndpoint does
//
// To the transport below, a TlsLayer is the Protocol; to the application protocol above, it is
// the Transport (with isTLS(), getPeerCertificate(), negotiatedProtocol(), tlsMode(), ...). When
// the transport below is an api::LowerTransport (TcpTransport), the layer hands it whole record
// buffers, flushes at the end of the loop turn and can move the record crypto into the kernel;
// over any other Transport it writes, schedules its own flush and stays in userspace. The
// application sees plaintext only: connectionMade() at once (or, with connectAfterHandshake,
// when the handshake completed: what client connects use), writes queued until the handshake
// completes and then coalesced into full records once per loop turn, handshakeCompleted() when
// the peer is verified, then onHandshake(ok); a failed handshake gives onHandshake(reason), then
// connectionLost(reason) to an application that was connected. loseConnection() sends
// close_notify (after what must precede it: queued files, the handshake, the kernel hand-over, a
// KeyUpdate) and closes without waiting for the peer's reply; a stalled handshake is closed after
// the context's handshake timeout.
//
// The layer runs the session, the application's Transport and the close; three parts do the
// rest, each in its own file: KernelHandover (kernel_handover.h, with tlsModeCounts()) moves the
// record crypto into the kernel and handles what the kernel hands back, FileSender
// (file_sender.h) queues the application's files and sends them in order with its writes, and
// BufferKeeper (buffer_keeper.h) decides whether OpenSSL keeps its record buffers between
// records. The layer owns the application protocol, the session and the parts (it is their
// Host); the transport below owns the layer.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "framework/api/lower_transport.h"
#include "framework/api/protocol.h"
#include "framework/api/transport.h"
#include "framework/base/buffer.h"
#include "framework/base/weak_ref.h"
#include "framework/tls/buffer_keeper.h"
#include "framework/tls/file_sender.h"
#include "framework/tls/kernel_handover.h"  // also tlsModeCounts()
#include "framework/tls/options.h"
#include "framework/tls/session.h"

namespace whorl::tls {

struct TlsLayerOptions {
  // Called once: ok after the handshake, or the reason it failed / the connection was lost first.
  std::function<void(Status)> onHandshake;
  // startTLS: the application is already connected; rebind it instead of connectionMade().
  bool upgrade = false;
  // The application's connectionMade() waits until the handshake completed (it then comes just
  // before onHandshake(ok) and handshakeCompleted()). A handshake that fails never reaches the
  // application: no connectionMade, no connectionLost; onHandshake reports it instead. What a
  // client connect uses so that its result is the one report of a failed handshake.
  bool connectAfterHandshake = false;
};

class TlsLayer final : public api::Protocol,
                       private api::TurnFlush,
                       private KernelHandover::Host,
                       private FileSender::Host {
 public:
  TlsLayer(std::shared_ptr<TlsContext> context, std::unique_ptr<api::Protocol> app,
           TlsLayerOptions options = {});
  ~TlsLayer() override;

  // api::Protocol: the transport below talks to us.
  void connectionMade() override;
  void dataReceived(std::string_view data) override;
  void connectionLost(const Status& reason) override;
  void pauseProducing() override;
  void resumeProducing() override;
  // Passed on to the application unless it is closing already.
  void stopRequested(api::Reactor::Clock::time_point deadline) override;

  api::Protocol* application() const { return app_.get(); }
  api::Transport* upper() { return &upper_; }
  TlsSession* session() const override { return session_.get(); }

 private:
  // The Transport the application protocol sees.
  class Upper final : public api::Transport {
   public:
    explicit Upper(TlsLayer* layer) : layer_(layer) {}
    void write(std::string_view data) override;
    void writeSequence(std::span<const std::string_view> parts) override;
    void loseConnection() override;
    void abortConnection() override;
    Address getPeer() const override;
    Address getHost() const override;
    void pauseProducing() override;
    void resumeProducing() override;
    size_t bufferedBytes() const override;
    bool disconnecting() const override;
    api::Reactor& reactor() override;
    bool isTLS() const override { return true; }
    std::shared_ptr<X509> getPeerCertificate() const override;
    std::optional<std::string> negotiatedProtocol() const override;
    std::string tlsVersion() const override;
    std::string cipher() const override;
    bool sessionResumed() const override;
    Status startTLS(std::shared_ptr<const api::TlsUpgrade>, api::StartTLSOptions) override {
      return Status::invalidArgument("startTLS: this connection already uses TLS");
    }
    api::TlsMode tlsMode() const override;
    void sendFile(int fd, uint64_t offset, uint64_t length,
                  std::function<void(Status)> done) override;

   private:
    TlsLayer* layer_;
  };

  // How the connection closes. Once it is not kOpen, the application's writes are dropped. The
  // kAfter states are a graceful close (loseConnection) waiting for what must precede its
  // close_notify; closeGracefully() moves to them, closeAfterWait() on from them.
  enum class Close : uint8_t {
    kOpen,
    kClosing,         // under way or done: loseConnection(), abortConnection(), or the peer's
                      // close_notify
    kAfterHandshake,  // until the handshake and the kernel hand-over have settled
    kAfterFiles,      // until the last queued file is out
    kAfterRekey,      // kernel TLS: until our KeyUpdate's new key is installed
  };
  bool closing() const override { return close_ != Close::kOpen; }

  void advance();
  void handshakeDone();
  void readLoop();
  void flushPlaintext();
  void flushCiphertext();
  void scheduleFlush();
  void flushBeforeSend() override;  // api::TurnFlush: the transport below calls it (scheduleFlush)
  void closeGracefully();
  void closeAfterWait();
  void failWith(Status reason) override;
  void notifyHandshake(Status s);
  void kernelFallback(Status why);

  // KernelHandover::Host and FileSender::Host: what the parts borrow, and their events.
  api::Transport& transportBelow() override { return *transport(); }
  api::LowerTransport* lower() override { return lower_; }
  void kernelInstalled(Status s) override;
  void kernelPeerClosed() override;
  void kernelRekeyed() override;
  Route fileRoute() override;
  void writeFileBytes(std::string_view bytes) override;
  void pumpFiles() override;
  void fileFailed() override;

  std::shared_ptr<TlsContext> context_;
  std::unique_ptr<api::Protocol> app_;
  // The transport below, as layers see it (buffers, turn-end flush, file reads, kernel TLS);
  // null over a plain Transport (test doubles): the layer then writes, schedules its own flush,
  // reads files with pread and stays in userspace. Set in connectionMade().
  api::LowerTransport* lower_ = nullptr;
  std::unique_ptr<TlsLayerOptions> options_;  // null: the defaults (most connections)
  Upper upper_{this};
  std::unique_ptr<TlsSession> session_;
  ByteBuffer plainOut_;  // written by the application, not yet encrypted
  api::DelayedCall handshakeTimer_;
  Status failure_;
  Close close_ = Close::kOpen;
  bool appPaused_ = false;
  bool aborted_ = false;  // abortConnection() called: nothing more is encrypted
  bool flushScheduled_ = false;
  bool lost_ = false;
  BufferKeeper keeper_;  // declared after session_, which it borrows
  KernelHandover kernel_{*this};
  FileSender files_{*this};
  // Callbacks queued on the reactor check it before touching the layer. Last: references read
  // null before any other member is destroyed.
  WeakAnchor<TlsLayer> anchor_{this};
};

// Wraps an application factory: every connection gets a TlsLayer in `context`'s role.
// setContext() swaps the context later connections get (certificate reload without a restart):
// connections already open keep the one they started with, which their layer holds.
class TlsFactory final : public api::Factory {
 public:
  TlsFactory(std::shared_ptr<TlsContext> context, std::shared_ptr<api::Factory> inner,
             TlsLayerOptions options = {})
      : context_(std::move(context)), inner_(std::move(inner)), options_(std::move(options)) {}
  std::unique_ptr<api::Protocol> buildProtocol(const Address& peer) override;
  void stopRequested(api::Reactor::Clock::time_point deadline) override {
    inner_->stopRequested(deadline);
  }
  const std::shared_ptr<api::Factory>& inner() const { return inner_; }
  // Thread-safe: accepting shards read the context while a reload replaces it.
  void setContext(std::shared_ptr<TlsContext> context) { context_.store(std::move(context)); }
  std::shared_ptr<TlsContext> context() const { return context_.load(); }

 private:
  std::atomic<std::shared_ptr<TlsContext>> context_;
  std::shared_ptr<api::Factory> inner_;
  TlsLayerOptions options_;
};

}  // namespace whorl::tls
