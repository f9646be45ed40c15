// react(main): run a program's asynchronous main and exit with its outcome (Twisted's task.react).
//
//   Deferred<void> main(reactor::Shard& reactor) {
//     auto client = co_await connectProtocol<EchoClient>(
//         endpoint::SSL4ClientEndpoint(reactor, "localhost", 8000, options));
//     if (!client) co_return client.status();          // react prints it and returns 1
//     co_return co_await client->whenLost();
//   }
//   int main() { return reactor::react(main); }
//
// react() starts a runtime (one shard unless options say otherwise), calls main(shard 0) on that
// shard, and when the Deferred main returned fires, stops the runtime (open connections are closed
// gracefully) and returns the exit status: 0 on success (for Deferred<int>, the value), 1 on
// failure after printing "<program>: <reason>" to stderr. A server's main listens, then waits for
// the runtime to stop (`co_return co_await reactor.whenStopping();`, or, without a coroutine, a
// Deferred that never fires, Twisted's `return defer.Deferred()`): SIGINT/SIGTERM stop the
// runtime with its drain (a main that finishes during one leaves it be) and react() returns the
// main's status (0), as Twisted's react does. If the runtime cannot start,
// react() logs why and returns 1. `main` runs on the shard's thread and is kept alive by react()
// until it returns, so a lambda's captures outlive the coroutine.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "framework/api/deferred.h"
#include "framework/reactor/runtime.h"
#include "framework/reactor/shard.h"

namespace whorl::reactor {

struct ReactOptions {
  RuntimeOptions runtime{.shards = 1};
  // Names the program in the failure line; empty: the executable's name.
  std::string program = {};
};

namespace detail {
// Runs the runtime. `start` runs on shard 0 once it is up and calls `finish(status)` on that shard
// when main's outcome is known (the status is already printed if it is a failure).
int runReact(const ReactOptions& options,
             const std::function<void(Shard& shard, std::function<void(int)> finish)>& start);
// Prints "<program>: <message>" for a failed main.
void reportFailure(const ReactOptions& options, const Status& why);
}  // namespace detail

template <typename F>
int react(F main, ReactOptions options = {}) {
  using D = std::invoke_result_t<F&, Shard&>;
  static_assert(api::detail::IsDeferred<D>::value,
                "react(main): main(reactor::Shard&) must return Deferred<void> or Deferred<int>");
  using V = typename D::value_type;
  static_assert(std::is_void_v<V> || std::is_same_v<V, int>,
                "react(main): main must return Deferred<void> (exit 0) or Deferred<int> (the exit "
                "status)");
  return detail::runReact(options, [&](Shard& shard, std::function<void(int)> finish) {
    D done = main(shard);
    done.addBoth([&options, finish](api::detail::Outcome<V>&& r) {
      if (!api::detail::outcomeOk(r)) {
        detail::reportFailure(options, api::detail::outcomeStatus(r));
        finish(1);
      } else if constexpr (std::is_void_v<V>) {
        finish(0);
      } else {
        finish(*r);
      }
    });
  });
}

}  // namespace whorl::reactor
