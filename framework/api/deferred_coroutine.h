// The C++20 coroutine support of Deferred<T> (see deferred.h, which includes this file; include
// deferred.h, not this): the promise type of a coroutine that returns a Deferred, the awaiter that
// co_await on a Deferred uses, and WHORL_CO_TRY / WHORL_CO_RETURN_IF_ERROR.
//
//   Deferred<int> size(Shard& reactor) {
//     WHORL_CO_TRY(std::string page, co_await fetch(reactor, "/"));   // or co_return its failure
//     co_return static_cast<int>(page.size());
//   }
//
// A coroutine's frame owns a reference to the Deferred it returns; what it awaits owns the frame
// (through the continuation that resumes it) until it fires. The semantics are in deferred.h.
#pragma once

#include <coroutine>
#include <optional>
#include <utility>

#include "framework/api/deferred.h"

namespace whorl::api {

namespace detail {

// The promise of a coroutine returning Deferred<T>: it owns a reference to the Deferred's state,
// knows which Deferred the coroutine is suspended on, and is how cancel() reaches the frame.
template <typename T>
class PromiseBase {
 public:
  PromiseBase() : state_(new State<T>()) {
    state_->ref();
    state_->setCanceller([this] { cancelFromOutside(); });
  }
  ~PromiseBase() {
    // A frame destroyed before it returned (cancelled, or abandoned: what it awaited can never
    // fire) leaves the Deferred unfired; cancel() on it now just fails it.
    if (!state_->fired()) state_->setCanceller({});
    state_->unref();
  }
  PromiseBase(const PromiseBase&) = delete;
  PromiseBase& operator=(const PromiseBase&) = delete;

  Deferred<T> get_return_object() { return Deferred<T>(state_); }
  std::suspend_never initial_suspend() noexcept { return {}; }
  auto final_suspend() noexcept {
    if (!returned_) {
      deferredFatal("a coroutine returning Deferred ended without co_return (end a Deferred<void> "
                    "coroutine with `co_return {};`)");
    }
    return std::suspend_never{};
  }
  void unhandled_exception() noexcept {
    deferredFatal("an exception escaped a Deferred coroutine: whorl's coroutines report "
                  "failures by co_return of a Status");
  }

  // For the awaiter.
  bool cancelRequested() const { return cancelRequested_; }
  void suspendOn(StateBase* awaited) { awaiting_ = awaited; }
  void resumed() { awaiting_ = nullptr; }

 protected:
  void finish(Outcome<T> r) {
    returned_ = true;
    state_->fire(std::move(r));
  }

 private:
  void cancelFromOutside() {
    if (awaiting_ == nullptr) {
      // Running (it cancelled itself, or a callback it called did): its next co_await ends it.
      cancelRequested_ = true;
      return;
    }
    StateBase* awaited = awaiting_;
    awaiting_ = nullptr;
    StateRef keep(awaited);
    // Destroys the frame (and this promise) without resuming it.
    awaited->dropContinuation();
    awaited->cancel();
  }

  State<T>* state_;
  StateBase* awaiting_ = nullptr;
  bool cancelRequested_ = false;
  bool returned_ = false;
};

template <typename T>
class Promise : public PromiseBase<T> {
 public:
  void return_value(Outcome<T> r) { this->finish(std::move(r)); }
};
template <>
class Promise<void> : public PromiseBase<void> {
 public:
  void return_value(Status s) { this->finish(std::move(s)); }
};

// co_await on a Deferred<U>: suspends until it fires and gives its Outcome (Result<U>, or Status).
// The awaiter takes the Deferred: it consumes its result, and holds it only until it is suspended
// (the producer keeps it alive from then on; see Deferred's ownership notes).
template <typename U>
class Awaiter {
 public:
  explicit Awaiter(Deferred<U> d) : d_(std::move(d)) {}
  Awaiter(const Awaiter&) = delete;
  Awaiter& operator=(const Awaiter&) = delete;

  // Always goes through await_suspend, which sees the promise: a coroutine cancelled while it
  // ran ends at its next co_await, even of a Deferred that already fired.
  bool await_ready() { return false; }
  template <typename P>
  bool await_suspend(std::coroutine_handle<P> h) {
    auto& promise = h.promise();
    if (promise.cancelRequested()) {
      h.destroy();  // not resumed, like a frame cancelled while suspended
      return true;
    }
    State<U>* s = d_.state();
    if (s->fired()) {
      s->setContinuation([this](Outcome<U>&& r) { result_.emplace(std::move(r)); });
      return false;  // resume at once
    }
    promise.suspendOn(s);
    s->setContinuation(Resume<P>(this, h));
    // From here the producer keeps `s` alive. If nothing does, dropping it destroys the frame
    // (this awaiter included) through Resume's destructor: nothing after this line touches it.
    Deferred<U> drop = std::move(d_);
    return true;
  }
  Outcome<U> await_resume() { return std::move(*result_); }

 private:
  // The continuation that resumes the coroutine, or destroys the frame if it is dropped unrun.
  template <typename P>
  class Resume {
   public:
    Resume(Awaiter* awaiter, std::coroutine_handle<P> h) : awaiter_(awaiter), h_(h) {}
    Resume(Resume&& o) noexcept : awaiter_(o.awaiter_), h_(std::exchange(o.h_, nullptr)) {}
    Resume& operator=(Resume&&) = delete;
    ~Resume() {
      if (h_) h_.destroy();
    }
    void operator()(Outcome<U>&& r) {
      awaiter_->result_.emplace(std::move(r));
      auto h = std::exchange(h_, nullptr);
      h.promise().resumed();
      h.resume();
    }

   private:
    Awaiter* awaiter_;
    std::coroutine_handle<P> h_;
  };

  Deferred<U> d_;
  std::optional<Outcome<U>> result_;
};

}  // namespace detail

// co_await takes the Deferred (an lvalue is left empty): it is its one consumer.
template <typename U>
detail::Awaiter<U> operator co_await(Deferred<U>&& d) {
  return detail::Awaiter<U>(std::move(d));
}
template <typename U>
detail::Awaiter<U> operator co_await(Deferred<U>& d) {
  return detail::Awaiter<U>(std::move(d));
}

}  // namespace whorl::api

// In a coroutine returning a Deferred: evaluates `expr` (a Result<T>, often a co_await) and
// co_returns its failure, or puts its value in `lhs` (a declaration or a variable):
//   WHORL_CO_TRY(auto certificate, tls::PrivateCertificate::loadPEMFile(path));
//   WHORL_CO_TRY(auto client, co_await connectProtocol<Chat>(endpoint));
#define WHORL_CO_TRY(lhs, expr) WHORL_CO_TRY_IMPL_(WHORL_CO_CONCAT_(whorl_co_try_, __LINE__), lhs, expr)
#define WHORL_CO_CONCAT_(a, b) WHORL_CO_CONCAT2_(a, b)
#define WHORL_CO_CONCAT2_(a, b) a##b
#define WHORL_CO_TRY_IMPL_(tmp, lhs, expr)                      \
  auto tmp = (expr);                                           \
  if (!tmp) co_return ::whorl::Status(tmp.status());           \
  lhs = std::move(tmp).value()

// In a coroutine returning a Deferred: co_return the failure of `expr` (a Status or Result, often
// a co_await) if it failed.
//   WHORL_CO_RETURN_IF_ERROR(co_await transport->sendFile(fd, 0, size));
#define WHORL_CO_RETURN_IF_ERROR(expr)                                     \
  do {                                                                     \
    auto&& whorl_co_result_ = (expr);                                      \
    if (!whorl_co_result_) co_return ::whorl::Status(                      \
        ::whorl::api::detail::outcomeStatus(whorl_co_result_));            \
  } while (0)
