// Logging: one line per event on stderr, safe from any thread.
//
//   WHORL_LOG(kInfo, "listening on %s with %d shards", addr.c_str(), n);
//   log::setLevel(log::Level::kWarning);     // quieter, e.g. in benchmarks
//
// printf-style so the hot path pays nothing when the level is off. Lines carry a UTC timestamp,
// the level and the shard ("s0") when logged from a shard thread. No allocation is owned by callers.
#pragma once

#include <atomic>
#include <cstdarg>

namespace whorl::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

void setLevel(Level level);
Level level();
inline bool enabled(Level l) {
  extern std::atomic<int> g_level;
  return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed);
}
// Names the calling thread in log lines (shards call this with their index).
void setThreadTag(const char* tag);
void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace whorl::log

#define WHORL_LOG(lvl, ...)                                                 \
  do {                                                                      \
    if (::whorl::log::enabled(::whorl::log::Level::lvl))                    \
      ::whorl::log::write(::whorl::log::Level::lvl, __VA_ARGS__);           \
  } while (0)
