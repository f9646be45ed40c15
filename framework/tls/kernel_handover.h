// KernelHandover: one TLS connection's record crypto moving into the kernel (kTLS) after the
// handshake, and what the kernel hands back from then on: control records (alerts,
// NewSessionTicket, KeyUpdate) and the TLS 1.3 key updates they start.
//
//   // In TlsLayer, its Host:
//   Status s = kernel_.start(context_->ktls());   // connectionMade; not ok: ktls=require, no kTLS
//   kernel_.readToRecordBoundary();                // after each read during the handshake
//   Status s = kernel_.install();                  // handshake done; not ok: fall back
//   ... host.kernelInstalled(status) -> kernel_.activate(rx) or kernel_.fallBack(mode, why)
//   if (kernel_.active()) transport()->write(plaintext);   // the kernel makes the records
//
// The kernel must take over at a record boundary with every later byte still in the socket, so
// the transport below delivers no more than the rest of the current record during the handshake
// (setReadLimit). States: kOff -> kWanted (handshake under way, reading record by record) ->
// kInstalling (the transport installs the keys once what was written is out) -> kActive; or back
// to kOff when the version, the cipher or the kernel refuses. While pending(), the application's
// writes and files wait: they go to the kernel or through OpenSSL, and which is not known yet.
//
// The layer owns the hand-over (a member) and lends it, through Host, the TLS session, the
// transport below and the layer's lifetime flag. The hand-over owns the connection's kTLS state
// and, for a TLS 1.3 client, the read key OpenSSL still needs for session tickets (handBack_).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "framework/api/lower_transport.h"
#include "framework/api/transport.h"
#include "framework/base/status.h"
#include "framework/base/weak_ref.h"
#include "framework/tls/ktls.h"
#include "framework/tls/options.h"
#include "framework/tls/session.h"

namespace whorl::tls {

// Connections by TLS mode, process-wide (for stats and tests).
struct TlsModeCounts {
  uint64_t userspace = 0;
  uint64_t kernelTx = 0;
  uint64_t kernelTxRx = 0;
};
TlsModeCounts tlsModeCounts();

class KernelHandover {
 public:
  // What the hand-over needs from the layer it serves (TlsLayer).
  class Host {
   public:
    virtual TlsSession* session() const = 0;
    // The layer's transport: the connection as a whole (it may wrap the LowerTransport).
    virtual api::Transport& transportBelow() = 0;
    virtual api::LowerTransport* lower() = 0;
    // The application or the peer started closing.
    virtual bool closing() const = 0;
    // Records the connection's failure (the first one counts); the caller or the transport
    // closes.
    virtual void failWith(Status reason) = 0;
    // The transport below installed the keys (ok), or could not.
    virtual void kernelInstalled(Status s) = 0;
    // The peer's close_notify came through the kernel.
    virtual void kernelPeerClosed() = 0;
    // Our KeyUpdates' new keys are all installed: what waited for them may go.
    virtual void kernelRekeyed() = 0;

   protected:
    ~Host() = default;
  };

  explicit KernelHandover(Host& host) : host_(host) {}
  KernelHandover(const KernelHandover&) = delete;
  KernelHandover& operator=(const KernelHandover&) = delete;

  // connectionMade: reads record by record if the kernel may take over after the handshake. Not
  // ok when `mode` is require and it cannot: the connection fails.
  Status start(KtlsMode mode);
  // During the handshake, after each read: no further than the end of the current record (or
  // the next record's header).
  void readToRecordBoundary();
  // Handshake done: asks the transport below for the kernel keys (host.kernelInstalled follows),
  // or first reads the rest of a record that is cut. Not ok: why the kernel cannot have them.
  Status install();
  // The transport installed the keys; `rx`: the kernel decrypts too.
  void activate(bool rx);
  // Userspace TLS from now on, for `why`; with `mode` require, the failure instead.
  Status fallBack(KtlsMode mode, const Status& why);
  // Counts the connection in tlsModeCounts(), once, in the mode it settled in.
  void countMode();

  bool off() const { return state_ == State::kOff; }
  bool wanted() const { return state_ == State::kWanted; }
  bool active() const { return state_ == State::kActive; }
  // The kernel decrypts: what arrives is plaintext.
  bool receives() const { return state_ == State::kActive && rx_; }
  // The kernel may still take the keys (the handshake or the installation is under way).
  bool pending() const { return state_ == State::kWanted || state_ == State::kInstalling; }
  // TLS 1.3 KeyUpdate: ours is sent, its new key not installed yet. The application's writes
  // wait meanwhile (none may precede our KeyUpdate).
  bool rekeying() const { return txRekeys_ > 0; }
  // The peer's close_notify came through the kernel.
  bool peerClosed() const { return peerCloseNotify_; }

 private:
  enum class State : uint8_t {
    kOff,         // userspace TLS only
    kWanted,      // reading record by record so the kernel can take over after the handshake
    kInstalling,  // handshake done; waiting for the transport to install the keys
    kActive,      // the kernel encrypts (and, if rx_, decrypts)
  };

  void onControlRecord(uint8_t type, std::string_view data);
  void onPeerKeyUpdate(bool updateRequested);
  void onTxRekeyed(Status s);
  void handBackToOpenSSL(std::string_view message);

  Host& host_;
  State state_ = State::kOff;
  bool rx_ = false;
  bool peerCloseNotify_ = false;
  bool modeCounted_ = false;
  int txRekeys_ = 0;  // our KeyUpdates whose key is not installed yet
  // TLS 1.3 clients in kernel mode: OpenSSL's read key and next sequence at the hand-over.
  // Allocated for that hand-over only.
  std::unique_ptr<Tls13RecordKey> handBack_;
  // Callbacks from the transport check it before touching the hand-over (which dies with its
  // layer). Last.
  WeakAnchor<KernelHandover> anchor_{this};
};

}  // namespace whorl::tls
