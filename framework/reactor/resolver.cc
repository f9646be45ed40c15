#include "framework/reactor/resolver.h"

#include <netdb.h>

#include <cstdio>
#include <cstdlib>

#include "framework/reactor/shard.h"

namespace whorl::reactor {

api::Deferred<std::vector<Address>> Resolver::resolve(std::string host, uint16_t port, int family) {
  Shard* here = Shard::current();
  if (here == nullptr) {
    std::fprintf(stderr, "whorl: Resolver::resolve(host, port) returns a Deferred, which lives on "
                         "one shard: call it on a shard, or use the callback form\n");
    std::abort();
  }
  api::Deferred<std::vector<Address>> result;
  resolve(std::move(host), port, family, *here,
          [result](Result<std::vector<Address>> addrs) mutable { result.fire(std::move(addrs)); });
  return result;
}

Resolver::~Resolver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Result<std::vector<Address>> Resolver::resolveNow(const std::string& host, uint16_t port,
                                                  int family) {
  auto literal = Address::parse(host, port);
  if (literal) {
    if (family != AF_UNSPEC && literal->family() != family) {
      return Status::invalidArgument("'" + host + "' is not an " +
                                     (family == AF_INET ? "IPv4" : "IPv6") + " address");
    }
    return std::vector<Address>{*literal};
  }
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc == EAI_ADDRFAMILY || rc == EAI_NONAME) {
    // AI_ADDRCONFIG hides loopback-only families on hosts without other addresses; retry.
    hints.ai_flags = 0;
    rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  }
  if (rc != 0) {
    return Status(Status::Code::kIo, "cannot resolve '" + host + "': " + gai_strerror(rc));
  }
  std::vector<Address> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Address a = Address::fromSockaddr(ai->ai_addr, ai->ai_addrlen);
    a.setPort(port);
    bool dup = false;
    for (const auto& o : out) dup = dup || o == a;
    if (!dup) out.push_back(a);
  }
  freeaddrinfo(res);
  if (out.empty()) return Status(Status::Code::kIo, "cannot resolve '" + host + "': no addresses");
  return out;
}

void Resolver::resolve(std::string host, uint16_t port, int family, Shard& replyTo,
                       Callback done) {
  if (Address::parse(host, port).isOk()) {
    auto result = resolveNow(host, port, family);
    replyTo.callSoon([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!worker_.joinable()) worker_ = std::thread([this] { workerLoop(); });
    queue_.push_back({std::move(host), port, family, &replyTo, std::move(done)});
  }
  cv_.notify_one();
}

void Resolver::workerLoop() {
  for (;;) {
    Request req;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      req = std::move(queue_.front());
      queue_.pop_front();
    }
    auto result = resolveNow(req.host, req.port, req.family);
    req.replyTo->post([done = std::move(req.done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }
}

}  // namespace whorl::reactor
