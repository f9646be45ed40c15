#include "framework/api/deferred.h"

#include <cstdio>
#include <cstdlib>

#include "framework/base/log.h"

namespace whorl::api::detail {

void deferredFatal(const std::string& message) {
  std::fprintf(stderr, "whorl: Deferred misuse: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

void logUnhandled(const Status& failure) {
  WHORL_LOG(kError, "Unhandled error in Deferred: %s", failure.toString().c_str());
}

std::string describeTimeout(std::chrono::nanoseconds timeout) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(timeout).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  if (ms > 0) return std::to_string(ms) + " ms";
  return std::to_string(duration_cast<microseconds>(timeout).count()) + " us";
}

StateBase::~StateBase() {
  unlinkUpstream();
  unlinkDownstream();
}

void StateBase::checkThread(const char* operation) const {
  if (std::this_thread::get_id() == thread_) return;
  deferredFatal(std::string("cannot ") + operation +
                " a Deferred from another thread: a Deferred lives on the shard that created it "
                "(hand results across shards with reactor::Sharded::invokeOn or Shard::post)");
}

void StateBase::waitOn(StateBase* upstream) {
  unlinkUpstream();
  upstream_ = upstream;
  upstream->downstream_ = this;
}

void StateBase::unlinkUpstream() {
  if (upstream_ == nullptr) return;
  if (upstream_->downstream_ == this) upstream_->downstream_ = nullptr;
  upstream_ = nullptr;
}

void StateBase::unlinkDownstream() {
  if (downstream_ == nullptr) return;
  if (downstream_->upstream_ == this) downstream_->upstream_ = nullptr;
  downstream_ = nullptr;
}

bool StateBase::dropLateResult(const char* operation) {
  if (dropLateResult_) {
    dropLateResult_ = false;
    return true;
  }
  deferredFatal(std::string("a Deferred was fired twice (") + operation +
                "): a Deferred carries one result; create a new one for the next");
}

void StateBase::cancel() {
  if (fired_) return;
  StateRef keep(this);
  if (upstream_ != nullptr) {
    // A chained Deferred: cancel what it waits on; that failure flows down the chain to here.
    upstream_->cancel();
  } else if (canceller_) {
    Callback<void()> canceller = std::move(canceller_);
    canceller_.reset();
    canceller();
  }
  if (!fired_) {
    cancelled_ = true;
    failCancelled();
    dropLateResult_ = true;
  } else if (!hasConsumer_) {
    // Fired by the cancellation (the canceller, or the chain above): the one who cancelled knows.
    cancelled_ = true;
  }
}

}  // namespace whorl::api::detail
