// Connector: an outgoing TCP connection made through io_uring (socket, then IORING_OP_CONNECT).
//
//   connectTcp(shard, {addr1, addr2}, factory, {.timeout = 30s},
//              [](Result<api::Protocol*> p) { /* on the shard, after connectionMade */ });
//
// Tries the candidate addresses in order until one connects (so "localhost" works whether the
// server listens on 127.0.0.1 or ::1). The callback runs exactly once on `shard`: with the
// connected protocol (owned by its transport, valid until connectionLost) or with the reason of
// the last failure. The Connector owns itself and is released after the callback.
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

// Shard thread only.
void connectTcp(reactor::Shard& shard, std::vector<Address> candidates,
                std::shared_ptr<api::Factory> factory, const ConnectOptions& options,
                ConnectCallback done);

}  // namespace whorl::net
