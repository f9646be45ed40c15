// Deferred<T>: a one-shot asynchronous result that lives on one shard (Twisted's Deferred), and
// the C++20 coroutines that await and return it (Twisted's Deferred.fromCoroutine).
//
//   // Callbacks, as in Twisted: each add* returns the Deferred of the chain so far.
//   deferLater(reactor, 2s, [] { return 42; })
//       .addCallback([](int n) { return n + 1; })                 // a value, Result, or Deferred
//       .addErrback([](const Status& why) { return -1; })         // recover from a failure
//       .addTimeout(5s, reactor);                                 // fail with kTimeout after 5 s
//
//   // A coroutine returns a Deferred; co_await gives a Result<T> (Status for Deferred<void>) and
//   // never throws: errors are values, passed on with co_return.
//   Deferred<int> fetchSize(reactor::Shard& reactor) {
//     Result<std::string> page = co_await fetch(reactor, "/");
//     if (!page) co_return page.status();        // fails the returned Deferred
//     co_return static_cast<int>(page->size());
//   }
//
// Semantics (Twisted's, carried over):
// - A Deferred fires once, with callback(value) or errback(status) (never an ok Status). Firing
//   twice is a bug and aborts, except for the one result that arrives after cancel(), which is
//   dropped (the producer may not have noticed the cancellation yet).
// - addCallback(f): f gets the value and returns U, Result<U>, Status (for void) or Deferred<U>;
//   the chain waits for a returned Deferred. Failures skip f. addErrback(f): f gets the failure's
//   Status and returns T, Result<T>, Status or Deferred<T> to recover (or fail again); values
//   skip f. addBoth(f): f gets Result<T> (Status for void). A callback added to a Deferred that
//   already fired runs at once.
// - One consumer per Deferred: addCallback/addErrback/addBoth/addTimeout or co_await, once. The
//   chain is the sequence of returned Deferreds; a second consumer on the same one aborts with a
//   message. The handle stays usable for cancel() and called().
// - cancel(): if it has not fired, runs its canceller (what it waits on is cancelled too: the
//   Deferred a chain waits on, the one a coroutine awaits), then fails it with kCancelled unless the
//   canceller fired it. addTimeout cancels the same way and turns the failure into kTimeout.
// - A failure that reaches the end of a chain and is never given to an errback, addBoth or
//   co_await is logged when its Deferred is destroyed ("Unhandled error in Deferred: ..."), as
//   Twisted does. A cancellation is known to whoever cancelled and is not logged.
//
// Ownership: Deferreds are reference-counted handles to shard-local state (no atomics, no locks):
// create, fire, chain, await and cancel them on one thread, the shard that created them; anything
// else aborts with a message (hand results across shards with reactor::Sharded or Shard::post).
// Whatever will fire a Deferred keeps it alive, and with it everything chained after it; nothing
// points back (a chain holds what it waits on only weakly, for cancel()). So when the producer
// drops a Deferred without firing it, the Deferred and its chain are freed, and a coroutine waiting
// on it is destroyed without resuming (its locals' destructors run): there is nothing left that
// could wake it. The Deferred a coroutine returns is kept alive by whatever it awaits.
//
// Coroutines start at once and run until their first co_await of an unfired Deferred. Cancelling
// the Deferred a coroutine returned cancels the Deferred it awaits and destroys its frame (it is
// not resumed). A coroutine must end with co_return: `co_return {};` ends a Deferred<void> one.
// GCC 12 (Debian 12's compiler) miscompiles one case: a temporary of aggregate type whose
// destructor does something (an options struct with a std::string, built with braces, or a
// lambda capturing a std::string by value) that appears inside a co_await expression is destroyed
// twice. Build such an object in a variable first:
//   TCP4ServerEndpoint server(reactor, 0, {.interface = "127.0.0.1"});   // not inside co_await
//   auto port = co_await server.listenDeferred(factory);
//   auto fetch = [name] { return lookup(name); };
//   Result<Entry> e = co_await deferLater(reactor, 1s, fetch);
// Temporaries made by constructors (std::string("..."), a Deferred, an endpoint with default
// options) are not affected, and clang 14 compiles all of it correctly.
//
// Take coroutine parameters by value: the frame keeps references as references, and a
// `const std::string&` bound to a temporary dangles after the first co_await that suspends.
// Likewise a lambda coroutine's captures live in the lambda object, which must outlive the
// coroutine (react() keeps its main alive; elsewhere prefer functions). The per-request data path (dataReceived, write) never
// creates a Deferred: frames and chains exist only where an application asks for them.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/api/reactor.h"
#include "framework/base/status.h"

namespace whorl::api {

template <typename T>
class Deferred;

namespace detail {

// The result a Deferred<T> carries: Result<T>, or Status for Deferred<void>.
template <typename T>
struct OutcomeOf {
  using type = Result<T>;
};
template <>
struct OutcomeOf<void> {
  using type = Status;
};
template <typename T>
using Outcome = typename OutcomeOf<T>::type;

inline bool outcomeOk(const Status& s) { return s.isOk(); }
template <typename T>
bool outcomeOk(const Result<T>& r) {
  return r.isOk();
}
inline const Status& outcomeStatus(const Status& s) { return s; }
template <typename T>
const Status& outcomeStatus(const Result<T>& r) {
  return r.status();
}

template <typename R>
struct IsDeferred : std::false_type {};
template <typename U>
struct IsDeferred<Deferred<U>> : std::true_type {};
template <typename R>
struct IsResult : std::false_type {};
template <typename U>
struct IsResult<Result<U>> : std::true_type {};

// What a callback's return type R makes the next Deferred carry: Deferred<U>, Result<U> -> U;
// Status and void -> void; anything else -> R.
template <typename R>
struct Lifted {
  using type = R;
};
template <>
struct Lifted<void> {
  using type = void;
};
template <>
struct Lifted<Status> {
  using type = void;
};
template <typename U>
struct Lifted<Result<U>> {
  using type = U;
};
template <typename U>
struct Lifted<Deferred<U>> {
  using type = U;
};
template <typename R>
using LiftedT = typename Lifted<std::decay_t<R>>::type;

[[noreturn]] void deferredFatal(const std::string& message);
void logUnhandled(const Status& failure);
std::string describeTimeout(std::chrono::nanoseconds timeout);

// A move-only callable (std::function copies; chains carry move-only values and callbacks).
template <typename Sig>
class Callback;
template <typename R, typename... A>
class Callback<R(A...)> {
 public:
  Callback() = default;
  template <typename F,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Callback>>>
  Callback(F f) : impl_(new Impl<F>(std::move(f))) {}  // NOLINT: implicit, like std::function
  explicit operator bool() const { return impl_ != nullptr; }
  R operator()(A... a) { return impl_->call(std::forward<A>(a)...); }
  void reset() { impl_.reset(); }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual R call(A... a) = 0;
  };
  template <typename F>
  struct Impl final : Base {
    explicit Impl(F fn) : f(std::move(fn)) {}
    R call(A... a) override { return f(std::forward<A>(a)...); }
    F f;
  };
  std::unique_ptr<Base> impl_;
};

// What every Deferred's state shares, whatever T is: the reference count, the firing rules, and
// the weak links cancel() follows to what the state waits on.
class StateBase {
 public:
  StateBase(const StateBase&) = delete;
  StateBase& operator=(const StateBase&) = delete;

  void ref() { ++refs_; }
  void unref() {
    if (--refs_ == 0) delete this;
  }
  bool fired() const { return fired_; }
  void cancel();
  void setCanceller(Callback<void()> canceller) { canceller_ = std::move(canceller); }
  // This state's result comes from `upstream` (a chained or returned Deferred): cancel() follows
  // the link. Weak: cleared when either side fires or dies.
  void waitOn(StateBase* upstream);
  // Drops the consumer without running it (a cancelled coroutine's resumption).
  virtual void dropContinuation() = 0;
  void checkThread(const char* operation) const;

 protected:
  StateBase() : thread_(std::this_thread::get_id()) {}
  virtual ~StateBase();
  virtual void failCancelled() = 0;
  // Called when this state fires or delivers: the links have done their job.
  void unlinkUpstream();
  void unlinkDownstream();
  // fire() after a cancel: true if this result is the late one to drop.
  bool dropLateResult(const char* operation);

  int refs_ = 0;
  bool fired_ = false;
  bool hasConsumer_ = false;
  bool cancelled_ = false;       // cancel() failed it: its kCancelled is not "unhandled"
  bool dropLateResult_ = false;  // the producer's result after cancel() is dropped, once
  StateBase* upstream_ = nullptr;
  StateBase* downstream_ = nullptr;
  Callback<void()> canceller_;
  std::thread::id thread_;
};

// Keeps a state alive for a scope.
class StateRef {
 public:
  explicit StateRef(StateBase* s) : s_(s) { s_->ref(); }
  ~StateRef() { s_->unref(); }
  StateRef(const StateRef&) = delete;
  StateRef& operator=(const StateRef&) = delete;

 private:
  StateBase* s_;
};

template <typename T>
class State final : public StateBase {
 public:
  using Out = Outcome<T>;
  using Continuation = Callback<void(Out&&)>;

  void fire(Out result) {
    checkThread("fire");
    if (fired_) {
      if (dropLateResult("fire")) return;
    }
    fired_ = true;
    unlinkUpstream();
    result_.emplace(std::move(result));
    deliver();
  }
  void setContinuation(Continuation c) {
    checkThread("add a callback to");
    if (hasConsumer_) {
      deferredFatal(
          "this Deferred already has a consumer (addCallback/addErrback/addBoth/addTimeout or "
          "co_await take it once): chain on the Deferred the first call returned");
    }
    hasConsumer_ = true;
    continuation_ = std::move(c);
    if (fired_) deliver();
  }
  void dropContinuation() override {
    continuation_.reset();
    hasConsumer_ = false;
  }
  void linkDownstream(StateBase* downstream) { downstream_ = downstream; }

 private:
  friend class StateBase;
  ~State() override {
    if (result_ && !outcomeOk(*result_) && !cancelled_) logUnhandled(outcomeStatus(*result_));
  }
  void failCancelled() override { fire(Out(Status::cancelled())); }
  void deliver() {
    if (!continuation_) return;
    StateRef keep(this);
    Continuation c = std::move(continuation_);
    continuation_.reset();
    Out r = std::move(*result_);
    result_.reset();
    unlinkDownstream();
    c(std::move(r));
  }

  std::optional<Out> result_;  // fired and not yet handed to the consumer
  Continuation continuation_;
};

template <typename T>
class PromiseBase;
template <typename T>
class Promise;
template <typename U>
class Awaiter;

}  // namespace detail


namespace detail {
// What addCallback's f returns when given a T (nothing for void).
template <typename T, typename F>
struct ValueCallResult {
  using type = std::invoke_result_t<F&, T&&>;
};
template <typename F>
struct ValueCallResult<void, F> {
  using type = std::invoke_result_t<F&>;
};
}  // namespace detail

template <typename T>
class Deferred {
 public:
  using value_type = T;
  using Outcome = detail::Outcome<T>;
  using promise_type = detail::Promise<T>;

  // A new Deferred that has not fired (Twisted's Deferred()): whoever holds it fires it with
  // callback()/errback(). `canceller` runs on cancel() before it fires (stop the work there).
  Deferred() : s_(new detail::State<T>()) { s_->ref(); }
  explicit Deferred(detail::Callback<void()> canceller) : Deferred() {
    s_->setCanceller(std::move(canceller));
  }
  Deferred(const Deferred& o) : s_(o.s_) {
    if (s_) s_->ref();
  }
  Deferred(Deferred&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Deferred& operator=(Deferred o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Deferred() {
    if (s_) s_->unref();
  }

  // Fires with a value (callback() for Deferred<void>) or a failure (never an ok Status).
  template <typename U = T, typename = std::enable_if_t<!std::is_void_v<U>>>
  void callback(U value) {
    state()->fire(Outcome(std::move(value)));
  }
  template <typename U = T, typename = std::enable_if_t<std::is_void_v<U>>>
  void callback() {
    state()->fire(Status::ok());
  }
  void errback(Status why) {
    if (why.isOk()) why = Status::invalidArgument("errback() with an ok Status");
    state()->fire(Outcome(std::move(why)));
  }
  // Fires with an outcome as it is: a Result<T> (Status for Deferred<void>).
  void fire(Outcome outcome) { state()->fire(std::move(outcome)); }
  // For producers that create the Deferred before they know how to stop the work: what cancel()
  // runs (replacing the one given to the constructor).
  void setCanceller(detail::Callback<void()> canceller) {
    state()->setCanceller(std::move(canceller));
  }

  bool called() const { return s_ != nullptr && s_->fired(); }
  void cancel() {
    if (s_ == nullptr) return;
    s_->checkThread("cancel");
    s_->cancel();
  }

  template <typename F>
  auto addCallback(F f) -> Deferred<detail::LiftedT<typename detail::ValueCallResult<T, F>::type>> {
    using U = detail::LiftedT<typename detail::ValueCallResult<T, F>::type>;
    return chain<U>([f = std::move(f)](Outcome&& r, detail::State<U>* next) mutable {
      if (!detail::outcomeOk(r)) {
        next->fire(detail::Outcome<U>(Status(detail::outcomeStatus(r))));
        return;
      }
      if constexpr (std::is_void_v<T>) {
        settle(next, [&]() -> decltype(auto) { return f(); });
      } else {
        settle(next, [&]() -> decltype(auto) { return f(std::move(r).value()); });
      }
    });
  }
  template <typename F>
  Deferred<T> addErrback(F f) {
    return chain<T>([f = std::move(f)](Outcome&& r, detail::State<T>* next) mutable {
      if (detail::outcomeOk(r)) {
        next->fire(std::move(r));
        return;
      }
      settle(next, [&]() -> decltype(auto) { return f(detail::outcomeStatus(r)); });
    });
  }
  template <typename F>
  auto addBoth(F f) -> Deferred<detail::LiftedT<std::invoke_result_t<F&, Outcome&&>>> {
    using U = detail::LiftedT<std::invoke_result_t<F&, Outcome&&>>;
    return chain<U>([f = std::move(f)](Outcome&& r, detail::State<U>* next) mutable {
      settle(next, [&]() -> decltype(auto) { return f(std::move(r)); });
    });
  }
  // Fails with kTimeout ("timed out after 5 s") if this has not fired after `timeout`, cancelling
  // it first (so that what it waits on stops). Otherwise fires as this does.
  Deferred<T> addTimeout(Reactor::Clock::duration timeout, Reactor& reactor) {
    auto timedOut = std::make_shared<bool>(false);
    Deferred<T> self = *this;
    DelayedCall call = reactor.callLater(timeout, [self, timedOut]() mutable {
      *timedOut = true;
      self.cancel();
    });
    std::string message = "timed out after " + detail::describeTimeout(timeout);
    return addBoth([call, timedOut, message](Outcome&& r) mutable -> Outcome {
      call.cancel();
      if (*timedOut && !detail::outcomeOk(r) &&
          detail::outcomeStatus(r).code() == Status::Code::kCancelled) {
        return Outcome(Status(Status::Code::kTimeout, message));
      }
      return std::move(r);
    });
  }

 private:
  template <typename U>
  friend class Deferred;
  friend class detail::PromiseBase<T>;
  template <typename U>
  friend class detail::Awaiter;

  explicit Deferred(detail::State<T>* s) : s_(s) { s_->ref(); }
  detail::State<T>* state() const {
    if (s_ == nullptr) detail::deferredFatal("use of a moved-from Deferred");
    return s_;
  }

  // Runs `call` (a user callback) and fires `next` with what it returned; a returned Deferred is
  // waited for.
  template <typename U, typename Call>
  static void settle(detail::State<U>* next, Call&& call) {
    using R = std::decay_t<decltype(call())>;
    if constexpr (std::is_void_v<R>) {
      call();
      next->fire(Status::ok());
    } else if constexpr (detail::IsDeferred<R>::value) {
      R inner = call();
      Deferred<U>::follow(next, inner);
    } else {
      next->fire(detail::Outcome<U>(call()));
    }
  }

  // `next` fires with whatever `inner` fires with.
  static void follow(detail::State<T>* next, const Deferred<T>& inner) {
    detail::State<T>* in = inner.state();
    next->waitOn(in);
    in->setContinuation([keep = Deferred<T>(next)](Outcome&& r) mutable {
      keep.s_->fire(std::move(r));
    });
  }

  template <typename U, typename Step>
  Deferred<U> chain(Step step) {
    detail::State<T>* self = state();
    Deferred<U> next;
    next.s_->waitOn(self);
    self->setContinuation([step = std::move(step), keep = next](Outcome&& r) mutable {
      step(std::move(r), keep.s_);
    });
    return next;
  }

  detail::State<T>* s_;
};

// An already fired Deferred (Twisted's succeed / fail).
template <typename T>
Deferred<std::decay_t<T>> succeed(T&& value) {
  Deferred<std::decay_t<T>> d;
  d.callback(std::forward<T>(value));
  return d;
}
inline Deferred<void> succeed() {
  Deferred<void> d;
  d.callback();
  return d;
}
template <typename T = void>
Deferred<T> fail(Status why) {
  Deferred<T> d;
  d.errback(std::move(why));
  return d;
}

// Runs fn on `reactor` after `delay` and fires with what it returns (a value, Result, Status or
// Deferred), like Twisted's task.deferLater. Cancelling the Deferred cancels the call.
template <typename F>
auto deferLater(Reactor& reactor, Reactor::Clock::duration delay, F fn) {
  Deferred<void> tick;
  DelayedCall call = reactor.callLater(delay, [tick]() mutable { tick.callback(); });
  tick.setCanceller([call]() mutable { call.cancel(); });
  return tick.addCallback(std::move(fn));
}
inline Deferred<void> deferLater(Reactor& reactor, Reactor::Clock::duration delay) {
  Deferred<void> tick;
  DelayedCall call = reactor.callLater(delay, [tick]() mutable { tick.callback(); });
  tick.setCanceller([call]() mutable { call.cancel(); });
  return tick;
}

// Fires with every value, in order, once all have fired, or with the first failure (Twisted's
// gatherResults with consumeErrors: later failures are consumed, not logged). Cancelling it
// cancels every input that has not fired.
template <typename T>
Deferred<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> gatherResults(
    std::vector<Deferred<T>> inputs) {
  using Out = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;
  struct Gather {
    Deferred<Out> out;
    std::vector<std::optional<std::conditional_t<std::is_void_v<T>, bool, T>>> values;
    std::vector<Deferred<void>> watchers;  // one per input: cancel() reaches the input through it
    size_t remaining = 0;
    bool done = false;
  };
  auto g = std::make_shared<Gather>();
  g->values.resize(inputs.size());
  g->remaining = inputs.size();
  Deferred<Out> out = g->out;
  if (inputs.empty()) {
    if constexpr (std::is_void_v<T>) {
      out.callback();
    } else {
      out.callback(std::vector<T>{});
    }
    return out;
  }
  std::weak_ptr<Gather> weak = g;
  out.setCanceller([weak]() mutable {
    if (auto live = weak.lock()) {
      std::vector<Deferred<void>> watchers = live->watchers;
      for (auto& w : watchers) w.cancel();
    }
  });
  for (size_t i = 0; i < inputs.size(); ++i) {
    g->watchers.push_back(inputs[i].addBoth([g, i](detail::Outcome<T>&& r) {
      if (g->done) return;
      if (!detail::outcomeOk(r)) {
        g->done = true;
        g->out.errback(Status(detail::outcomeStatus(r)));
        return;
      }
      if constexpr (std::is_void_v<T>) {
        g->values[i] = true;
      } else {
        g->values[i] = std::move(r).value();
      }
      if (--g->remaining > 0) return;
      g->done = true;
      if constexpr (std::is_void_v<T>) {
        g->out.callback();
      } else {
        std::vector<T> all;
        all.reserve(g->values.size());
        for (auto& v : g->values) all.push_back(std::move(*v));
        g->out.callback(std::move(all));
      }
    }));
  }
  return out;
}

}  // namespace whorl::api

// Coroutines returning and awaiting Deferreds (the promise type, co_await, WHORL_CO_TRY).
#include "framework/api/deferred_coroutine.h"
