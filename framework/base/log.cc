#include "framework/base/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <mutex>
#include <type_traits>

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

namespace {
std::atomic<int> g_format{static_cast<int>(Format::kText)};

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Text values are bare when they are one plain word, else quoted with JSON escapes (so a reason
// with spaces or a hostile peer-controlled string cannot fake another field or line).
void appendTextValue(std::string& out, std::string_view s) {
  bool plain = !s.empty();
  for (unsigned char c : s) {
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c >= 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += s;
  } else {
    appendJsonString(out, s);
  }
}

void appendValue(std::string& out, Format format, const Field& f) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          if (format == Format::kJson) {
            appendJsonString(out, v);
          } else {
            appendTextValue(out, v);
          }
        } else if constexpr (std::is_same_v<T, bool>) {
          out += v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          char buf[32];
          std::snprintf(buf, sizeof(buf), "%.3f", v);
          out += buf;
        } else {
          out += std::to_string(v);
        }
      },
      f.value);
}

const char* jsonLevel(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
    case Level::kOff: return "off";
  }
  return "?";
}

// The timestamp/level/thread prefix; for JSON the opening of the object up to "msg":.
std::string prefix(Format format, Level level) {
  char buf[128];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  if (format == Format::kJson) {
    std::snprintf(buf, sizeof(buf),
                  "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"thread\":",
                  utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                  utc.tm_sec, ts.tv_nsec / 1000000, jsonLevel(level));
    std::string out = buf;
    appendJsonString(out, t_tag);
    out += ',';
    return out;
  }
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                utc.tm_sec, ts.tv_nsec / 1000000, levelName(level), t_tag);
  return buf;
}

void emit(std::string& line) {
  line += '\n';
  // One fwrite per line keeps lines from different shards whole.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}
}  // namespace

void setFormat(Format f) { g_format.store(static_cast<int>(f), std::memory_order_relaxed); }
Format format() { return static_cast<Format>(g_format.load(std::memory_order_relaxed)); }
bool parseFormat(std::string_view text, Format* out) {
  if (text == "text") {
    *out = Format::kText;
  } else if (text == "json") {
    *out = Format::kJson;
  } else {
    return false;
  }
  return true;
}

void write(Level level, const char* fmt, ...) {
  char body[1024];
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(body, sizeof(body), fmt, ap);
  va_end(ap);
  size_t len = m < 0 ? 0 : std::min(static_cast<size_t>(m), sizeof(body) - 1);
  Format f = format();
  std::string line = prefix(f, level);
  if (f == Format::kJson) {
    line += "\"msg\":";
    appendJsonString(line, std::string_view(body, len));
    line += '}';
  } else {
    line.append(body, len);
  }
  emit(line);
}

std::string formatFields(Format f, std::string_view message, std::initializer_list<Field> fields) {
  std::string out;
  if (f == Format::kJson) {
    out += "\"msg\":";
    appendJsonString(out, message);
    for (const Field& field : fields) {
      out += ',';
      appendJsonString(out, field.key);
      out += ':';
      appendValue(out, f, field);
    }
    out += '}';
    return out;
  }
  out += message;
  for (const Field& field : fields) {
    out += ' ';
    out += field.key;
    out += '=';
    appendValue(out, f, field);
  }
  return out;
}

void event(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  Format f = format();
  std::string line = prefix(f, level);
  line += formatFields(f, message, fields);
  emit(line);
}

}  // namespace whorl::log
