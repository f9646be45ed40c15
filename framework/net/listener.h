// Listener: one shard's SO_REUSEPORT listening socket with a multishot accept.
//
//   int fd = openListeningSocket(addr, {.backlog = 4096}).value();   // any thread
//   shard.post([&] { Listener::start(shard, fd, factory, {}); });     // on the shard
//
// Every shard of a server has its own socket bound to the same address; the kernel spreads new
// connections across them. Each accepted socket becomes a TcpTransport on the accepting shard.
// Out of descriptors (EMFILE/ENFILE) or memory: the connection waits in the backlog, open
// connections go on being served, and accepting resumes after a back-off (no busy loop). The
// shard owns the Listener; stop() closes the socket once the accept is cancelled.
#pragma once

#include <functional>
#include <memory>

#include "framework/api/protocol.h"
#include "framework/base/address.h"
#include "framework/base/weak_ref.h"
#include "framework/net/tcp_transport.h"
#include "framework/reactor/shard.h"

namespace whorl::net {

struct ListenOptions {
  int backlog = 4096;
  bool reusePort = true;
  bool ipv6Only = false;  // for "::": also accept IPv4-mapped connections unless set
};

// Creates, binds and listens. Errors name the address ("bind 0.0.0.0:80: Permission denied").
Result<int> openListeningSocket(const Address& address, const ListenOptions& options);

class Listener final : public reactor::Resident {
 public:
  // Takes ownership of the listening socket and starts accepting. Shard thread only. Returns a
  // reference to the listener (read it on this shard only), null once the listener is freed;
  // `handle`, if given (WeakRef<Listener>::unbound(), made on any thread), becomes that reference.
  static WeakRef<Listener> start(reactor::Shard& shard, int fd,
                                 std::shared_ptr<api::Factory> factory,
                                 const TransportOptions& transportOptions,
                                 WeakRef<Listener> handle = {});
  // Stops accepting and closes the socket; `done` runs on the shard once it is closed.
  void stop(std::function<void()> done);
  void onShutdown(ShutdownPhase phase) override;
  ~Listener() override;

 private:
  Listener(reactor::Shard& shard, int fd, std::shared_ptr<api::Factory> factory,
           const TransportOptions& transportOptions, const WeakRef<Listener>& handle);
  void arm();
  void onAccept(int res, uint32_t flags);
  void onCancel(int res, uint32_t flags);
  void maybeClose();

  reactor::Shard& shard_;
  int fd_;
  std::shared_ptr<api::Factory> factory_;
  TransportOptions transportOptions_;
  uring::MemberOp<Listener, &Listener::onAccept> acceptOp_{this};
  uring::MemberOp<Listener, &Listener::onCancel> cancelOp_{this};
  bool stopping_ = false;
  bool closed_ = false;
  api::DelayedCall retry_;
  std::chrono::milliseconds backoff_{0};
  std::vector<std::function<void()>> onClosed_;
  WeakAnchor<Listener> anchor_;  // the last member: cleared before the others go
};

}  // namespace whorl::net
