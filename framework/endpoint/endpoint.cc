#include "framework/endpoint/endpoint.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace whorl::endpoint {

ListeningPort::ListeningPort(reactor::Runtime& runtime, Address host,
                             std::vector<WeakRef<net::Listener>> listeners)
    : runtime_(runtime), host_(std::move(host)), listeners_(std::move(listeners)) {}

void ListeningPort::stopListening(std::function<void()> done) {
  auto remaining = std::make_shared<std::atomic<int>>(static_cast<int>(listeners_.size()));
  auto finished = std::make_shared<std::function<void()>>(std::move(done));
  auto oneDone = [remaining, finished] {
    if (remaining->fetch_sub(1) == 1 && *finished) (*finished)();
  };
  for (int i = 0; i < static_cast<int>(listeners_.size()); ++i) {
    WeakRef<net::Listener> listener = listeners_[static_cast<size_t>(i)];
    runtime_.shard(i).post([listener, oneDone] {
      if (net::Listener* l = listener.get()) {
        l->stop(oneDone);
      } else {
        oneDone();
      }
    });
  }
}

TCPServerEndpoint::TCPServerEndpoint(reactor::Runtime& runtime, int family, uint16_t port,
                                     TcpServerOptions options)
    : runtime_(runtime), family_(family), port_(port), options_(std::move(options)) {}

Result<std::unique_ptr<ListeningPort>> TCPServerEndpoint::listen(
    std::shared_ptr<api::Factory> factory) {
  std::string iface = options_.interface;
  if (iface.empty()) iface = family_ == AF_INET6 ? "::" : "0.0.0.0";
  auto addr = Address::parse(iface, port_);
  if (!addr) return addr.status().withContext("interface");
  if (addr->family() != family_) {
    return Status::invalidArgument("interface '" + iface + "' is not an " +
                                   (family_ == AF_INET ? "IPv4" : "IPv6") + " address");
  }
  net::ListenOptions lo;
  lo.backlog = options_.backlog;
  std::vector<int> fds;
  Address bound = *addr;
  for (int i = 0; i < runtime_.shardCount(); ++i) {
    auto fd = net::openListeningSocket(bound, lo);
    if (!fd) {
      for (int f : fds) close(f);
      return fd.status();
    }
    if (i == 0) {
      // Port 0: the kernel picked one; the other shards join the same port.
      bound = Address::fromSocketName(*fd);
    }
    fds.push_back(*fd);
  }
  // Start accepting on each shard; the shard binds its listener to the reference made here. The
  // port's stopListening() reaches each shard through the same mailbox, after the start.
  std::vector<WeakRef<net::Listener>> listeners;
  for (int i = 0; i < runtime_.shardCount(); ++i) {
    int fd = fds[static_cast<size_t>(i)];
    auto slot = WeakRef<net::Listener>::unbound();
    listeners.push_back(slot);
    reactor::Shard& shard = runtime_.shard(i);
    net::TransportOptions to = options_.transport;
    shard.post([&shard, fd, factory, to, slot] { net::Listener::start(shard, fd, factory, to, slot); });
  }
  return std::make_unique<ListeningPort>(runtime_, bound, std::move(listeners));
}

TCPClientEndpoint::TCPClientEndpoint(reactor::Shard& shard, int family, std::string host,
                                     uint16_t port, TcpClientOptions options)
    : shard_(shard), family_(family), host_(std::move(host)), port_(port),
      options_(std::move(options)) {}

void TCPClientEndpoint::connect(std::shared_ptr<api::Factory> factory, ConnectCallback done,
                                std::shared_ptr<net::ConnectAttempt> attempt) {
  reactor::Shard* shard = &shard_;
  int family = family_;
  std::string host = host_;
  uint16_t port = port_;
  net::ConnectOptions co;
  co.timeout = options_.timeout;
  co.transport = options_.transport;
  shard_.post([shard, family, host, port, factory, co, done, attempt]() mutable {
    if (attempt && attempt->cancelled()) {
      done(net::ConnectAttempt::cancelledStatus("connect to " + host));
      return;
    }
    shard->runtime()->resolver().resolve(
        host, port, family, *shard,
        [shard, host, factory, co, done, attempt](Result<std::vector<Address>> addrs) mutable {
          if (attempt && attempt->cancelled()) {
            done(net::ConnectAttempt::cancelledStatus("connect to " + host));
            return;
          }
          if (!addrs) {
            done(addrs.status());
            return;
          }
          net::connectTcp(*shard, std::move(addrs.value()), factory, co, std::move(done), attempt);
        });
  });
}

api::Deferred<api::ProtocolHandle<>> ClientEndpoint::connect(std::shared_ptr<api::Factory> factory) {
  reactor::Shard& home = shard();
  if (!home.onShardThread()) {
    std::fprintf(stderr,
                 "whorl: ClientEndpoint::connect(factory) returns a Deferred, which lives on one "
                 "shard: call it on the endpoint's shard (shard %d), or use the callback form\n",
                 home.index());
    std::abort();
  }
  auto attempt = std::make_shared<net::ConnectAttempt>();
  api::Deferred<api::ProtocolHandle<>> result([attempt] { attempt->cancel(); });
  connect(
      std::move(factory),
      [result, attempt](Result<api::Protocol*> r) mutable {
        if (r && attempt->cancelled()) {
          // Connected in the same turn the caller cancelled: nobody wants this connection.
          (*r)->transport()->abortConnection();
          return;
        }
        if (r) {
          result.callback(api::ProtocolHandle<>(*r));
        } else {
          result.errback(r.status());
        }
      },
      attempt);
  return result;
}

api::Deferred<std::unique_ptr<ListeningPort>> ServerEndpoint::listenDeferred(
    std::shared_ptr<api::Factory> factory) {
  reactor::Shard* here = reactor::Shard::current();
  if (here == nullptr) {
    std::fprintf(stderr, "whorl: listenDeferred() returns a Deferred, which lives on one shard: "
                         "call it on a shard, or use listen()\n");
    std::abort();
  }
  auto port = listen(std::move(factory));
  if (!port) return api::fail<std::unique_ptr<ListeningPort>>(port.status());
  // Each shard starts accepting from its mailbox, in order: a message posted after listen() runs
  // after its listener started.
  auto shared = std::make_shared<std::unique_ptr<ListeningPort>>(std::move(port.value()));
  reactor::Runtime& runtime = *here->runtime();
  std::vector<api::Deferred<void>> started;
  for (int i = 0; i < runtime.shardCount(); ++i) {
    api::Deferred<void> one;
    auto holder = std::make_shared<api::Deferred<void>>(one);
    runtime.shard(i).post([here, holder] {
      here->post([holder] {
        api::Deferred<void> d = std::move(*holder);
        d.callback();
      });
    });
    started.push_back(one);
  }
  return api::gatherResults(std::move(started)).addCallback([shared] {
    return std::move(*shared);
  });
}

}  // namespace whorl::endpoint
