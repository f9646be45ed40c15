#include "framework/reactor/react.h"

#include <errno.h>

#include "framework/reactor/sharded.h"

namespace whorl::reactor {

namespace detail {

int runReact(const ReactOptions& options,
             const std::function<void(Shard& shard, std::function<void(int)> finish)>& start) {
  Runtime runtime(options.runtime);
  int exitCode = 0;  // written on shard 0, read after run() has joined it
  RunHooks hooks;
  hooks.ready = [&] {
    Shard& shard = runtime.shard(0);
    shard.post([&] {
      start(shard, [&](int code) {
        exitCode = code;
        // A main that ends because the runtime is stopping (a server) leaves the drain as it is.
        if (!runtime.stopRequested()) runtime.stop(std::chrono::milliseconds(0));
      });
    });
  };
  int rc = runtime.run(std::move(hooks));
  return rc != 0 ? rc : exitCode;
}

void reportFailure(const ReactOptions& options, const Status& why) {
  const std::string& program =
      options.program.empty() ? std::string(program_invocation_short_name) : options.program;
  std::fprintf(stderr, "%s: %s\n", program.c_str(), why.message().c_str());
  std::fflush(stderr);
}

void shardedFatal(const std::string& message) {
  std::fprintf(stderr, "whorl: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace detail

}  // namespace whorl::reactor
