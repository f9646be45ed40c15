// Logging: one line per event on stderr, safe from any thread.
//
//   WHORL_LOG(kInfo, "listening on %s with %d shards", addr.c_str(), n);
//   log::setLevel(log::Level::kWarning);     // quieter, e.g. in benchmarks
//
// printf-style so the hot path pays nothing when the level is off. Lines carry a UTC timestamp,
// the level and the shard ("s0") when logged from a shard thread. No allocation is owned by callers.
//
// Events with fields, for log pipelines (one line per connection end, say):
//   log::event(log::Level::kInfo, "connection closed",
//              {{"peer", peer}, {"bytes_in", uint64_t{n}}, {"reason", why}});
//   text: ... connection closed peer=203.0.113.7:5123 bytes_in=42 reason="peer closed"
//   json: {"ts":"...","level":"info","thread":"s0","msg":"connection closed","peer":...}
// log::setFormat(Format::kJson) switches every line, printf-style ones included, to JSON.
#pragma once

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

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

enum class Format { kText, kJson };
void setFormat(Format format);
Format format();
// "text" or "json".
bool parseFormat(std::string_view text, Format* out);

struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, uint64_t v) : key(k), value(v) {}
  Field(std::string_view k, int64_t v) : key(k), value(v) {}
  Field(std::string_view k, int v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  std::string_view key;
  std::variant<std::string_view, uint64_t, int64_t, double, bool> value;
};
// One line: the message and its fields, in the current format. Keys are plain identifiers;
// string values are quoted (text) or escaped (JSON) as needed.
void event(Level level, std::string_view message, std::initializer_list<Field> fields);
// The line event() would write, without the timestamp/level/thread prefix (for tests).
std::string formatFields(Format format, std::string_view message,
                         std::initializer_list<Field> fields);

}  // namespace whorl::log

#define WHORL_LOG(lvl, ...)                                                 \
  do {                                                                      \
    if (::whorl::log::enabled(::whorl::log::Level::lvl))                    \
      ::whorl::log::write(::whorl::log::Level::lvl, __VA_ARGS__);           \
  } while (0)
