// Resolver: host name lookups that never block a shard.
//
//   runtime.resolver().resolve("localhost", 8000, AF_UNSPEC, shard,
//       [](Result<std::vector<Address>> addrs) { /* runs on `shard` */ });
//   Result<std::vector<Address>> addrs = co_await runtime.resolver().resolve("localhost", 8000);
//
// Numeric addresses resolve at once. Names go to one worker thread running getaddrinfo(); the
// result is posted back to the requesting shard. The Runtime owns the Resolver; lookups still
// running when it is destroyed are abandoned (their callbacks never run).
#pragma once

#include <sys/socket.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "framework/api/deferred.h"
#include "framework/base/address.h"
#include "framework/base/status.h"

namespace whorl::reactor {

class Shard;

class Resolver {
 public:
  using Callback = std::function<void(Result<std::vector<Address>>)>;
  Resolver() = default;
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // family: AF_INET, AF_INET6 or AF_UNSPEC (both, in the system's preferred order).
  void resolve(std::string host, uint16_t port, int family, Shard& replyTo, Callback done);
  // The Deferred form, called on a shard (the result comes back to it). Cancelling it drops the
  // answer (getaddrinfo itself cannot be interrupted).
  api::Deferred<std::vector<Address>> resolve(std::string host, uint16_t port,
                                              int family = AF_UNSPEC);
  // Blocking lookup, for tools and tests outside a shard.
  static Result<std::vector<Address>> resolveNow(const std::string& host, uint16_t port,
                                                 int family);

 private:
  struct Request {
    std::string host;
    uint16_t port;
    int family;
    Shard* replyTo;
    Callback done;
  };
  void workerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace whorl::reactor
