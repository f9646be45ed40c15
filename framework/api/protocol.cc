#include "framework/api/protocol.h"

#include <cstdio>
#include <cstdlib>

namespace whorl::api {

namespace {
void tellWaiters(detail::ProtocolLife* life) {
  std::vector<Deferred<void>> waiters = std::move(life->waiters);
  life->waiters.clear();
  for (auto& w : waiters) {
    if (life->reason.isCleanClose()) {
      w.callback();
    } else {
      w.errback(life->reason);
    }
  }
}
}  // namespace

Protocol::~Protocol() {
  if (life_ == nullptr) return;
  life_->protocol = nullptr;
  if (!life_->lost) {
    life_->lost = true;
    life_->reason = Status(Status::Code::kAborted, "the protocol was destroyed before its connection was lost");
    ++life_->refs;  // the waiters may drop the last handle
    tellWaiters(life_);
    --life_->refs;
  }
  if (--life_->refs == 0) delete life_;
}

detail::ProtocolLife* Protocol::life() {
  if (life_ == nullptr) {
    life_ = new detail::ProtocolLife();
    life_->protocol = this;
    life_->refs = 1;  // the protocol's own
  }
  return life_;
}

void Protocol::deliverConnectionLost(const Status& reason) {
  connectionLost(reason);
  if (life_ == nullptr || life_->lost) return;
  life_->lost = true;
  life_->protocol = nullptr;
  life_->reason = reason;
  tellWaiters(life_);
}

namespace detail {
void protocolHandleFatal(bool empty) {
  std::fprintf(stderr, "whorl: %s\n",
               empty ? "use of an empty ProtocolHandle"
                     : "use of a ProtocolHandle whose connection is gone (connectionLost ran): "
                       "check handle.get() before using it where the connection may have ended");
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

}  // namespace whorl::api
