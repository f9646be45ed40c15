#include "framework/base/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

namespace whorl::log {

namespace {
int initialLevel() {
  const char* env = std::getenv("WHORL_LOG");
  if (env == nullptr) return static_cast<int>(Level::kInfo);
  if (std::strcmp(env, "debug") == 0) return static_cast<int>(Level::kDebug);
  if (std::strcmp(env, "warning") == 0) return static_cast<int>(Level::kWarning);
  if (std::strcmp(env, "error") == 0) return static_cast<int>(Level::kError);
  if (std::strcmp(env, "off") == 0) return static_cast<int>(Level::kOff);
  return static_cast<int>(Level::kInfo);
}
thread_local char t_tag[16] = "main";
const char* levelName(Level l) {
  switch (l) {
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO";
    case Level::kWarning: return "WARN";
    case Level::kError: return "ERROR";
    case Level::kOff: return "OFF";
  }
  return "?";
}
}  // namespace

std::atomic<int> g_level{initialLevel()};

void setLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

void setThreadTag(const char* tag) {
  std::strncpy(t_tag, tag, sizeof(t_tag) - 1);
  t_tag[sizeof(t_tag) - 1] = '\0';
}

void write(Level level, const char* fmt, ...) {
  char line[1024];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  int n = std::snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                        utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                        utc.tm_sec, ts.tv_nsec / 1000000, levelName(level), t_tag);
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len > sizeof(line) - 2) len = sizeof(line) - 2;
  line[len++] = '\n';
  // One fwrite per line keeps lines from different shards whole.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line, 1, len, stderr);
  std::fflush(stderr);
}

}  // namespace whorl::log
