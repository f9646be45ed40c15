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

class Listener;
// A weak reference to a Listener, read and written only on its shard: null once it is freed.
using ListenerHandle = std::shared_ptr<Listener*>;

class Listener final : public reactor::Resident {
 public:
  // Takes ownership of the listening socket and starts accepting. Shard thread only. `handle`
  // (created if null) is pointed at the listener and reset when it is freed.
  static ListenerHandle start(reactor::Shard& shard, int fd, std::shared_ptr<api::Factory> factory,
                              const TransportOptions& transportOptions,
                              ListenerHandle handle = nullptr);
  // Stops accepting and closes the socket; `done` runs on the shard once it is closed.
  void stop(std::function<void()> done);
  void onShutdown(ShutdownPhase phase) override;
  ~Listener() override;

 private:
  Listener(reactor::Shard& shard, int fd, std::shared_ptr<api::Factory> factory,
           const TransportOptions& transportOptions, ListenerHandle handle);
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
  int inflight_ = 0;
  bool armed_ = false;
  bool stopping_ = false;
  bool closed_ = false;
  api::DelayedCall retry_;
  std::chrono::milliseconds backoff_{0};
  std::vector<std::function<void()>> onClosed_;
  ListenerHandle handle_;
};

}  // namespace whorl::net
