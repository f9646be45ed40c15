// Sharded<T>: one T per shard, each touched only by its own shard's thread (Seastar's
// sharded<T>). Per-shard state without locks or thread_local, and cross-shard calls that answer
// with a Deferred.
//
//   struct Subscribers { std::vector<ProtocolHandle<Chat>> all; };
//   reactor::Sharded<Subscribers> subs(runtime);            // one Subscribers per shard
//   // in a protocol, on its shard:
//   subs.local().all.emplace_back(this);
//   subs.invokeOnAll([line = std::string(line)](Subscribers& s) {   // every shard, on its thread
//     for (auto& c : s.all) if (Chat* chat = c.get()) chat->sendLine(line);
//   });
//   Deferred<size_t> total = subs.mapReduce([](Subscribers& s) { return s.all.size(); },
//                                           size_t{0}, std::plus<>());
//
// invokeOn(shard, fn) runs fn(instance) on that shard's thread and fires the returned Deferred
// on the calling shard with fn's result (fn may return a value, Result, Status or Deferred, as
// addCallback's callbacks do). Calls go through the target shard's bounded mailbox
// (RuntimeOptions::mailboxCapacity): when it is full, the Deferred fails at once with kUnavailable
// and the target's ShardStats::mailboxRejected counts it, so a flood of messages cannot grow memory
// without bound; wait for replies before sending more. invokeOn, invokeOnAll and mapReduce are
// called on a shard of the same runtime (their Deferreds live there); fn must be copyable (it is
// copied into the mailbox) and its result movable.
//
// Ownership: the Sharded owns the instances. Create it before the runtime runs and destroy it after
// the runtime has stopped (join() or run() returned); the instances are built on the calling
// thread, as T(args...) each, and destroyed there.
#pragma once

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/api/deferred.h"
#include "framework/reactor/runtime.h"
#include "framework/reactor/shard.h"

namespace whorl::reactor {

namespace detail {
[[noreturn]] void shardedFatal(const std::string& message);
}  // namespace detail

template <typename T>
class Sharded {
 public:
  template <typename... Args>
  explicit Sharded(Runtime& runtime, const Args&... args) : runtime_(runtime) {
    static_assert(std::is_constructible_v<T, const Args&...>,
                  "Sharded<T>(runtime, args...) builds T(args...) on every shard: T has no such "
                  "constructor");
    for (int i = 0; i < runtime.shardCount(); ++i) instances_.push_back(std::make_unique<T>(args...));
  }
  Sharded(const Sharded&) = delete;
  Sharded& operator=(const Sharded&) = delete;

  int shardCount() const { return static_cast<int>(instances_.size()); }

  // The calling shard's instance.
  T& local() { return *instances_[static_cast<size_t>(callingShard("local()").index())]; }
  // The instance of the shard `reactor` is (what a protocol sees as transport()->reactor()).
  T& local(const api::Reactor& reactor) {
    checkIndex(reactor.shardIndex(), "local(reactor)");
    return *instances_[static_cast<size_t>(reactor.shardIndex())];
  }

  // Runs fn(instance of `shard`) on that shard; the Deferred fires here with fn's result.
  template <typename F>
  auto invokeOn(int shard, F fn)
      -> api::Deferred<api::detail::LiftedT<std::invoke_result_t<F&, T&>>> {
    using U = api::detail::LiftedT<std::invoke_result_t<F&, T&>>;
    using Out = api::detail::Outcome<U>;
    Shard& here = callingShard("invokeOn");
    if (shard < 0 || shard >= shardCount()) {
      return api::fail<U>(Status::invalidArgument("invokeOn: no shard " + std::to_string(shard) +
                                                  " (the runtime has " +
                                                  std::to_string(shardCount()) + ")"));
    }
    T* target = instances_[static_cast<size_t>(shard)].get();
    if (shard == here.index()) {
      return api::succeed().addCallback([target, fn = std::move(fn)]() mutable { return fn(*target); });
    }
    api::Deferred<U> result;
    // Touched only on this shard: the reply moves the handle out here before firing it.
    auto reply = std::make_shared<api::Deferred<U>>(result);
    Shard* origin = &here;
    Status posted = runtime_.shard(shard).tryPost([target, fn, reply, origin]() mutable {
      api::succeed()
          .addCallback([&]() mutable { return fn(*target); })
          .addBoth([reply, origin](Out&& r) {
            auto carried = std::make_shared<Out>(std::move(r));
            origin->post([reply, carried] {
              api::Deferred<U> d = std::move(*reply);
              d.fire(std::move(*carried));
            });
          });
    });
    if (!posted.isOk()) {
      reply.reset();
      result.errback(std::move(posted));
    }
    return result;
  }

  // invokeOn every shard; fires when all have run fn (results are dropped), or with the first
  // failure.
  template <typename F>
  api::Deferred<void> invokeOnAll(F fn) {
    std::vector<api::Deferred<void>> each;
    for (int i = 0; i < shardCount(); ++i) {
      each.push_back(invokeOn(i, fn).addCallback([](auto&&...) {}));
    }
    return api::gatherResults(std::move(each));
  }

  // mapper(instance) on every shard, then reducer(acc, value) over the results in shard order,
  // starting from `initial`, on the calling shard.
  template <typename Mapper, typename R, typename Reducer>
  api::Deferred<R> mapReduce(Mapper mapper, R initial, Reducer reducer) {
    using V = api::detail::LiftedT<std::invoke_result_t<Mapper&, T&>>;
    std::vector<api::Deferred<V>> each;
    for (int i = 0; i < shardCount(); ++i) each.push_back(invokeOn(i, mapper));
    return api::gatherResults(std::move(each))
        .addCallback([initial = std::move(initial), reducer = std::move(reducer)](
                         std::vector<V> values) mutable {
          R acc = std::move(initial);
          for (auto& v : values) acc = reducer(std::move(acc), std::move(v));
          return acc;
        });
  }

 private:
  Shard& callingShard(const char* what) {
    Shard* s = Shard::current();
    if (s == nullptr || s->runtime() != &runtime_) {
      detail::shardedFatal(std::string("Sharded::") + what +
                           " must be called on a shard of the runtime it was built with "
                           "(from another thread, post to a shard first)");
    }
    return *s;
  }
  void checkIndex(int index, const char* what) const {
    if (index < 0 || index >= shardCount()) {
      detail::shardedFatal(std::string("Sharded::") + what + ": shard " + std::to_string(index) +
                           " is not one of this runtime's");
    }
  }

  Runtime& runtime_;
  std::vector<std::unique_ptr<T>> instances_;
};

}  // namespace whorl::reactor
