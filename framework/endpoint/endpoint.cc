#include "framework/endpoint/endpoint.h"

#include <unistd.h>

#include <atomic>

namespace whorl::endpoint {

ListeningPort::ListeningPort(reactor::Runtime& runtime, Address host,
                             std::vector<net::ListenerHandle> handles)
    : runtime_(runtime), host_(std::move(host)), handles_(std::move(handles)) {}

void ListeningPort::stopListening(std::function<void()> done) {
  auto remaining = std::make_shared<std::atomic<int>>(static_cast<int>(handles_.size()));
  auto finished = std::make_shared<std::function<void()>>(std::move(done));
  auto oneDone = [remaining, finished] {
    if (remaining->fetch_sub(1) == 1 && *finished) (*finished)();
  };
  for (int i = 0; i < static_cast<int>(handles_.size()); ++i) {
    net::ListenerHandle h = handles_[static_cast<size_t>(i)];
    runtime_.shard(i).post([h, oneDone] {
      if (*h != nullptr) {
        (*h)->stop(oneDone);
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
  std::vector<net::ListenerHandle> handles(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) handles[i] = std::make_shared<net::Listener*>(nullptr);
  // Start accepting on each shard; the shard fills in its listener's handle.
  for (int i = 0; i < runtime_.shardCount(); ++i) {
    int fd = fds[static_cast<size_t>(i)];
    net::ListenerHandle slot = handles[static_cast<size_t>(i)];
    reactor::Shard& shard = runtime_.shard(i);
    net::TransportOptions to = options_.transport;
    shard.post([&shard, fd, factory, to, slot] { net::Listener::start(shard, fd, factory, to, slot); });
  }
  return std::make_unique<ListeningPort>(runtime_, bound, std::move(handles));
}

TCPClientEndpoint::TCPClientEndpoint(reactor::Shard& shard, int family, std::string host,
                                     uint16_t port, TcpClientOptions options)
    : shard_(shard), family_(family), host_(std::move(host)), port_(port),
      options_(std::move(options)) {}

void TCPClientEndpoint::connect(std::shared_ptr<api::Factory> factory, ConnectCallback done) {
  reactor::Shard* shard = &shard_;
  int family = family_;
  std::string host = host_;
  uint16_t port = port_;
  net::ConnectOptions co;
  co.timeout = options_.timeout;
  co.transport = options_.transport;
  shard_.post([shard, family, host, port, factory, co, done]() mutable {
    shard->runtime()->resolver().resolve(
        host, port, family, *shard,
        [shard, factory, co, done](Result<std::vector<Address>> addrs) mutable {
          if (!addrs) {
            done(addrs.status());
            return;
          }
          net::connectTcp(*shard, std::move(addrs.value()), factory, co, std::move(done));
        });
  });
}

}  // namespace whorl::endpoint
