#include "framework/net/listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include "framework/base/log.h"

namespace whorl::net {

namespace {
constexpr std::chrono::milliseconds kFirstBackoff{20};
constexpr std::chrono::milliseconds kMaxBackoff{1000};
}  // namespace

Result<int> openListeningSocket(const Address& address, const ListenOptions& options) {
  int fd = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::fromErrno(errno, "socket for " + address.toString());
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (options.reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    int err = errno;
    close(fd);
    return Status::fromErrno(err, "SO_REUSEPORT on " + address.toString());
  }
  if (address.isIPv6()) {
    int v6only = options.ipv6Only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  if (bind(fd, address.addr(), address.length()) != 0) {
    int err = errno;
    close(fd);
    return Status::fromErrno(err, "bind " + address.toString());
  }
  if (listen(fd, options.backlog) != 0) {
    int err = errno;
    close(fd);
    return Status::fromErrno(err, "listen on " + address.toString());
  }
  return fd;
}

Listener::Listener(reactor::Shard& shard, int fd, std::shared_ptr<api::Factory> factory,
                   const TransportOptions& transportOptions, const WeakRef<Listener>& handle)
    : shard_(shard),
      fd_(fd),
      factory_(std::move(factory)),
      transportOptions_(transportOptions),
      anchor_(this, handle) {
  shard_.adopt(this);
}

Listener::~Listener() {
  retry_.cancel();
  if (fd_ >= 0) close(fd_);
}

WeakRef<Listener> Listener::start(reactor::Shard& shard, int fd,
                                  std::shared_ptr<api::Factory> factory,
                                  const TransportOptions& transportOptions,
                                  WeakRef<Listener> handle) {
  auto* l = new Listener(shard, fd, std::move(factory), transportOptions, handle);
  WeakRef<Listener> result = l->anchor_.ref();
  if (shard.stopping()) {
    l->stop({});
  } else {
    l->arm();
  }
  return result;
}

void Listener::arm() {
  if (acceptOp_.armed() || stopping_) return;
  io_uring_sqe* sqe = shard_.ring().sqe();
  io_uring_prep_multishot_accept(sqe, fd_, nullptr, nullptr, SOCK_CLOEXEC);
  uring::Ring::setOp(sqe, &acceptOp_);
}

void Listener::onAccept(int res, uint32_t flags) {
  bool more = flags & IORING_CQE_F_MORE;
  if (res >= 0) {
    backoff_ = std::chrono::milliseconds(0);
    if (stopping_) {
      close(res);
    } else {
      shard_.stats().accepted.fetch_add(1, std::memory_order_relaxed);
      auto* t = new TcpTransport(shard_, res, transportOptions_);
      if (transportOptions_.proxyProtocol != ProxyProtocolMode::kOff) {
        t->startAfterProxyHeader(factory_);
      } else {
        auto protocol = factory_->build(t->getPeer());
        if (!protocol) shard_.stats().refused.fetch_add(1, std::memory_order_relaxed);
        t->start(std::move(protocol));
      }
    }
  } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    shard_.stats().acceptErrors.fetch_add(1, std::memory_order_relaxed);
    backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
    if (backoff_ == kFirstBackoff) {
      WHORL_LOG(kWarning,
                "accept: %s; open connections are still served, retrying with back-off "
                "(raise the limit with ulimit -n / LimitNOFILE)",
                strerror(-res));
    }
    if (more) {
      // Never spin on a resource error: stop this accept and resume after the back-off.
      io_uring_sqe* sqe = shard_.ring().sqe();
      io_uring_prep_cancel(sqe, &acceptOp_, 0);
      uring::Ring::setOp(sqe, &cancelOp_);
    }
    if (!stopping_ && !retry_.active()) {
      retry_ = shard_.callLater(backoff_, [this] { arm(); });
    }
    maybeClose();
    return;
  } else if (res != -ECANCELED) {
    // Per-connection failures (ECONNABORTED, EPERM from a firewall): skip that connection.
    shard_.stats().acceptErrors.fetch_add(1, std::memory_order_relaxed);
    WHORL_LOG(kDebug, "accept: %s", strerror(-res));
  }
  if (!acceptOp_.armed() && !stopping_ && !retry_.active()) arm();
  maybeClose();
}

void Listener::onCancel(int, uint32_t) { maybeClose(); }

void Listener::stop(std::function<void()> done) {
  if (done) onClosed_.push_back(std::move(done));
  if (closed_) {
    auto callbacks = std::move(onClosed_);
    onClosed_.clear();
    for (auto& cb : callbacks) cb();
    return;
  }
  if (stopping_) return;
  stopping_ = true;
  retry_.cancel();
  if (acceptOp_.armed()) {
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_cancel(sqe, &acceptOp_, 0);
    uring::Ring::setOp(sqe, &cancelOp_);
  }
  maybeClose();
}

void Listener::maybeClose() {
  // The ops point at this listener: it goes once the ring has delivered their last completions.
  if (!stopping_ || acceptOp_.armed() || cancelOp_.armed() || closed_) return;
  closed_ = true;
  close(fd_);
  fd_ = -1;
  auto callbacks = std::move(onClosed_);
  onClosed_.clear();
  shard_.release(this);
  for (auto& cb : callbacks) cb();
}

void Listener::onShutdown(ShutdownPhase phase) {
  if (phase == ShutdownPhase::kStopAccepting && !stopping_) {
    factory_->stopRequested(shard_.drainDeadline());
  }
  stop({});
}

}  // namespace whorl::net
