// Connector: an outgoing TCP connection made through io_uring (socket, then IORING_OP_CONNECT).
//
//   connectTcp(shard, {addr1, addr2}, factory, {.timeout = 30s},
//              [](Result<api::Protocol*> p) { /* on the shard, after connectionMade */ });
//
// Tries the candidate addresses in order until one connects (so "localhost" works whether the
// server listens on 127.0.0.1 or ::1). The callback runs exactly once on `shard`: with the
// connected protocol (owned by its transport, valid until connectionLost) or with the reason of
// the last failure. The Connector owns itself and is released after the callback. A ConnectAttempt
// passed in cancels it: the callback then gets kCancelled.
//
//   auto attempt = std::make_shared<ConnectAttempt>();
//   connectTcp(shard, addrs, factory, {}, done, attempt);
//   attempt->cancel();                  // on `shard`: stops the connect in flight
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "framework/api/protocol.h"
#include "framework/base/address.h"
#include "framework/net/tcp_transport.h"
#include "framework/reactor/shard.h"

namespace whorl::net {

struct ConnectOptions {
  std::chrono::milliseconds timeout{30000};  // per attempt
  TransportOptions transport{};
};

using ConnectCallback = std::function<void(Result<api::Protocol*>)>;

// A connection attempt that can be cancelled while it runs, through whichever stage it is in
// (name resolution, TCP connect, TLS handshake: each stage says how it stops). Shard-local: used
// on the shard the attempt runs on.
class ConnectAttempt {
 public:
  // Stops the current stage; its callback then reports kCancelled. Later stages do not start.
  void cancel();
  bool cancelled() const { return cancelled_; }
  // For the stages: how to stop what runs now (replaces the previous stage's). Runs at once if
  // the attempt was already cancelled.
  void setStop(std::function<void()> stop);
  static Status cancelledStatus(std::string_view what);

 private:
  bool cancelled_ = false;
  std::function<void()> stop_;
};

// Shard thread only.
void connectTcp(reactor::Shard& shard, std::vector<Address> candidates,
                std::shared_ptr<api::Factory> factory, const ConnectOptions& options,
                ConnectCallback done, std::shared_ptr<ConnectAttempt> attempt = nullptr);

}  // namespace whorl::net
