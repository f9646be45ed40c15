#include "framework/net/connector.h"

#include <sys/socket.h>
#include <unistd.h>

#include "framework/base/weak_ref.h"

namespace whorl::net {

void ConnectAttempt::cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  if (stop_) {
    auto stop = std::move(stop_);
    stop_ = nullptr;
    stop();
  }
}

void ConnectAttempt::setStop(std::function<void()> stop) {
  stop_ = std::move(stop);
  if (cancelled_ && stop_) {
    auto now = std::move(stop_);
    stop_ = nullptr;
    now();
  }
}

Status ConnectAttempt::cancelledStatus(std::string_view what) {
  return Status::cancelled(std::string(what) + ": cancelled");
}

namespace {

class Connector final : public reactor::Resident {
 public:
  Connector(reactor::Shard& shard, std::vector<Address> candidates,
            std::shared_ptr<api::Factory> factory, const ConnectOptions& options,
            ConnectCallback done)
      : shard_(shard),
        candidates_(std::move(candidates)),
        factory_(std::move(factory)),
        options_(options),
        done_(std::move(done)) {
    shard_.adopt(this);
  }
  ~Connector() override {
    timer_.cancel();
    if (fd_ >= 0) close(fd_);
  }

  // The attempt's stop for this stage: cancel the connect in flight.
  void watch(ConnectAttempt& attempt) {
    attempt.setStop([self = anchor_.ref()] {
      if (Connector* c = self.get()) c->cancelByCaller();
    });
  }

  void next() {
    if (cancelled_) {
      finish(ConnectAttempt::cancelledStatus("connect"));
      return;
    }
    if (shard_.stopping()) {
      finish(Status(Status::Code::kAborted, "runtime is stopping"));
      return;
    }
    if (index_ >= candidates_.size()) {
      finish(last_.isOk() ? Status::invalidArgument("no address to connect to") : last_);
      return;
    }
    target_ = candidates_[index_++];
    fd_ = socket(target_.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      last_ = Status::fromErrno(errno, "socket for " + target_.toString());
      next();
      return;
    }
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_connect(sqe, fd_, target_.addr(), target_.length());
    uring::Ring::setOp(sqe, &connectOp_);
    timedOut_ = false;
    timer_ = shard_.callLater(options_.timeout, [this] {
      timedOut_ = true;
      cancelConnect();
    });
  }

  void onShutdown(ShutdownPhase phase) override {
    if (phase != ShutdownPhase::kStopAccepting) cancelConnect();
  }

 private:
  void cancelByCaller() {
    if (finished_ || cancelled_) return;
    cancelled_ = true;
    if (opsArmed()) cancelConnect();
  }

  void cancelConnect() {
    io_uring_sqe* sqe = shard_.ring().sqe();
    io_uring_prep_cancel(sqe, &connectOp_, 0);
    uring::Ring::setOp(sqe, &cancelOp_);
  }

  void onConnect(int res, uint32_t) {
    timer_.cancel();
    if (res == 0) {
      int fd = fd_;
      fd_ = -1;
      auto* t = new TcpTransport(shard_, fd, options_.transport);
      t->markOutgoing();
      auto protocol = factory_->build(t->getPeer());
      api::Protocol* p = protocol.get();
      t->start(std::move(protocol));
      if (p == nullptr) {
        finish(Status(Status::Code::kRefused, "the factory built no protocol"));
      } else {
        finish(p);
      }
      return;
    }
    close(fd_);
    fd_ = -1;
    if (res == -ECANCELED && timedOut_) {
      last_ = Status(Status::Code::kTimeout,
                     "connect to " + target_.toString() + ": timed out after " +
                         std::to_string(options_.timeout.count()) + " ms");
    } else if (res == -ECANCELED && cancelled_) {
      last_ = ConnectAttempt::cancelledStatus("connect to " + target_.toString());
    } else if (res == -ECANCELED) {
      last_ = Status(Status::Code::kAborted, "connect to " + target_.toString() + ": cancelled");
    } else {
      last_ = Status::fromErrno(-res, "connect to " + target_.toString());
    }
    if (res == -ECANCELED && !timedOut_) {
      finish(last_);
      return;
    }
    next();
  }

  void onCancel(int, uint32_t) { maybeRelease(); }

  void finish(Result<api::Protocol*> result) {
    finished_ = true;
    ConnectCallback done = std::move(done_);
    if (done) done(std::move(result));
    maybeRelease();
  }

  void maybeRelease() {
    if (finished_ && !opsArmed()) shard_.release(this);
  }

  // A connect or a cancel is in the ring: this must not be freed yet.
  bool opsArmed() const { return connectOp_.armed() || cancelOp_.armed(); }

  reactor::Shard& shard_;
  std::vector<Address> candidates_;
  size_t index_ = 0;
  std::shared_ptr<api::Factory> factory_;
  ConnectOptions options_;
  ConnectCallback done_;
  Address target_;
  Status last_;
  int fd_ = -1;
  bool timedOut_ = false;
  bool cancelled_ = false;  // by the caller's ConnectAttempt
  bool finished_ = false;
  api::DelayedCall timer_;
  uring::MemberOp<Connector, &Connector::onConnect> connectOp_{this};
  uring::MemberOp<Connector, &Connector::onCancel> cancelOp_{this};
  WeakAnchor<Connector> anchor_{this};  // the last member: cleared before the others go
};

}  // namespace

void connectTcp(reactor::Shard& shard, std::vector<Address> candidates,
                std::shared_ptr<api::Factory> factory, const ConnectOptions& options,
                ConnectCallback done, std::shared_ptr<ConnectAttempt> attempt) {
  auto* c = new Connector(shard, std::move(candidates), std::move(factory), options,
                          std::move(done));
  if (attempt) c->watch(*attempt);
  c->next();
}

}  // namespace whorl::net
