#include "tools/loadgen/report.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>

namespace whorl::loadgen {

namespace {

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0) return {};
  return std::string(
      buf, static_cast<size_t>(n) < sizeof(buf) ? static_cast<size_t>(n) : sizeof(buf) - 1);
}

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += format("\\u%04x", c);
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

// Numbers for JSON: finite, fixed precision, no exponent surprises.
std::string jsonNumber(double v, int decimals) {
  if (!(v == v) || v > 1e300 || v < -1e300) return "0";
  return format("%.*f", decimals, v);
}

double perSecond(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

double resumedFraction(const LoadStats& s) {
  return s.handshakes > 0 ? static_cast<double>(s.resumed) / static_cast<double>(s.handshakes) : 0;
}

std::string describeTarget(const RunInfo& info) {
  std::string t = info.target + (info.tls ? " (TLS" : " (plain TCP");
  if (info.tls && !info.hostname.empty()) t += ", name " + info.hostname;
  if (info.tls && info.resume) t += ", resumption";
  t += ")";
  return t;
}

std::string describeWork(const RunInfo& info) {
  if (info.mode == "http") return "GET " + info.path;
  if (info.mode == "echo") return format("%" PRIu64 "-byte messages", info.size);
  std::string w = "new connection per request";
  if (info.request == "http") w += ", then GET " + info.path;
  if (info.request == "echo") w += format(", then one %" PRIu64 "-byte echo", info.size);
  return w;
}

}  // namespace

const char* errorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kConnect:
      return "connect";
    case ErrorKind::kTls:
      return "tls";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kMismatch:
      return "mismatch";
    case ErrorKind::kClosed:
      return "closed";
    case ErrorKind::kHttp:
      return "http";
  }
  return "unknown";
}

uint64_t LoadStats::totalErrors() const {
  uint64_t n = 0;
  for (uint64_t e : errors) n += e;
  for (uint64_t e : statusErrors) n += e;
  return n;
}

void LoadStats::merge(const LoadStats& o) {
  requests += o.requests;
  handshakes += o.handshakes;
  resumed += o.resumed;
  connects += o.connects;
  bytesIn += o.bytesIn;
  bytesOut += o.bytesOut;
  for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
  for (size_t i = 0; i < statusErrors.size(); ++i) statusErrors[i] += o.statusErrors[i];
  latency.merge(o.latency);
}

std::string describeErrors(const LoadStats& s) {
  std::string out;
  auto add = [&out](const std::string& name, uint64_t n) {
    if (n == 0) return;
    if (!out.empty()) out += ", ";
    out += name + " " + std::to_string(n);
  };
  for (int k = 0; k < kErrorKinds; ++k) {
    add(errorKindName(static_cast<ErrorKind>(k)), s.errors[static_cast<size_t>(k)]);
  }
  for (int st = 0; st < LoadStats::kMaxStatus; ++st) {
    add("status-" + std::to_string(st), s.statusErrors[static_cast<size_t>(st)]);
  }
  return out.empty() ? "none" : out;
}

std::string formatText(const RunInfo& info, const LoadStats& s) {
  const double w = info.windowSeconds;
  std::string out;
  out += format("%s %s: %s\n", info.mode.c_str(), describeTarget(info).c_str(),
                describeWork(info).c_str());
  out += format("%d connection%s, %d shard%s, ", info.connections, info.connections == 1 ? "" : "s",
                info.shards, info.shards == 1 ? "" : "s");
  if (info.mode != "handshake") out += format("pipeline %d, ", info.pipeline);
  if (info.rate > 0) {
    out += format("open loop at %.0f req/s", info.rate);
  } else {
    out += "closed loop";
  }
  out += format("; %.2f s measured after %.2f s warm-up\n", w, info.warmupSeconds);
  out += format("  %-11s %12s %12s\n", "", "total", "per second");
  out += format("  %-11s %12" PRIu64 " %12.1f\n", "requests", s.requests, perSecond(s.requests, w));
  out += format("  %-11s %12" PRIu64 " %12.1f", "handshakes", s.handshakes,
                perSecond(s.handshakes, w));
  if (info.tls) out += format("   resumed %.1f%%", 100.0 * resumedFraction(s));
  out += "\n";
  out += format("  %-11s %12.2f %12.2f\n", "MB in", static_cast<double>(s.bytesIn) / 1e6,
                perSecond(s.bytesIn, w) / 1e6);
  out += format("  %-11s %12.2f %12.2f\n", "MB out", static_cast<double>(s.bytesOut) / 1e6,
                perSecond(s.bytesOut, w) / 1e6);
  const LatencyHistogram& h = s.latency;
  out += format("  %-11s %9s %9s %9s %9s %9s %9s\n", "latency us", "p50", "p90", "p99", "p99.9",
                "max", "mean");
  out += format("  %-11s %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9.1f\n",
                "", h.percentile(50), h.percentile(90), h.percentile(99), h.percentile(99.9),
                h.max(), h.mean());
  if (info.serverSampled) {
    double n = s.requests > 0 ? static_cast<double>(s.requests) : 1;
    out += format("  %-11s pid %d: %.2f us CPU/request (user %.2f, sys %.2f), %.3f wake-ups/request, "
                  "%.0f%% of a core\n",
                  "server", info.serverPid,
                  (info.serverUserSeconds + info.serverSystemSeconds) * 1e6 / n,
                  info.serverUserSeconds * 1e6 / n, info.serverSystemSeconds * 1e6 / n,
                  static_cast<double>(info.serverWakeups) / n,
                  w > 0 ? 100 * (info.serverUserSeconds + info.serverSystemSeconds) / w : 0.0);
  }
  out += format("  %-11s %12" PRIu64 "   ", "errors", s.totalErrors());
  out += s.totalErrors() == 0 ? "" : describeErrors(s);
  out += "\n";
  for (const auto& n : info.notes) out += "  note: " + n + "\n";
  return out;
}

std::string formatJson(const RunInfo& info, const LoadStats& s) {
  const double w = info.windowSeconds;
  const LatencyHistogram& h = s.latency;
  std::string o = "{";
  o += "\"mode\":" + jsonString(info.mode);
  if (info.mode == "handshake") o += ",\"request\":" + jsonString(info.request);
  o += ",\"target\":" + jsonString(info.target);
  o += std::string(",\"tls\":") + (info.tls ? "true" : "false");
  if (info.tls) o += ",\"hostname\":" + jsonString(info.hostname);
  if (info.tls) o += std::string(",\"resume\":") + (info.resume ? "true" : "false");
  if (info.mode == "http" || info.request == "http") o += ",\"path\":" + jsonString(info.path);
  if (info.mode == "echo" || info.request == "echo") o += ",\"size\":" + std::to_string(info.size);
  o += ",\"connections\":" + std::to_string(info.connections);
  o += ",\"shards\":" + std::to_string(info.shards);
  o += ",\"pipeline\":" + std::to_string(info.pipeline);
  o += ",\"rate\":" + jsonNumber(info.rate, 1);
  o += ",\"duration_s\":" + jsonNumber(w, 3);
  o += ",\"warmup_s\":" + jsonNumber(info.warmupSeconds, 3);
  o += ",\"requests\":" + std::to_string(s.requests);
  o += ",\"late_requests\":" + std::to_string(info.lateRequests);
  o += ",\"requests_per_sec\":" + jsonNumber(perSecond(s.requests, w), 1);
  o += ",\"handshakes\":" + std::to_string(s.handshakes);
  o += ",\"handshakes_per_sec\":" + jsonNumber(perSecond(s.handshakes, w), 1);
  o += ",\"resumed\":" + std::to_string(s.resumed);
  o += ",\"resumed_fraction\":" + jsonNumber(resumedFraction(s), 4);
  o += ",\"connects\":" + std::to_string(s.connects);
  o += ",\"bytes_in\":" + std::to_string(s.bytesIn);
  o += ",\"bytes_out\":" + std::to_string(s.bytesOut);
  o += ",\"mb_in_per_sec\":" + jsonNumber(perSecond(s.bytesIn, w) / 1e6, 3);
  o += ",\"mb_out_per_sec\":" + jsonNumber(perSecond(s.bytesOut, w) / 1e6, 3);
  o += ",\"latency_us\":{";
  o += "\"count\":" + std::to_string(h.count());
  o += ",\"min\":" + std::to_string(h.min());
  o += ",\"mean\":" + jsonNumber(h.mean(), 1);
  o += ",\"p50\":" + std::to_string(h.percentile(50));
  o += ",\"p90\":" + std::to_string(h.percentile(90));
  o += ",\"p99\":" + std::to_string(h.percentile(99));
  o += ",\"p99_9\":" + std::to_string(h.percentile(99.9));
  o += ",\"max\":" + std::to_string(h.max());
  o += "}";
  if (info.serverSampled) {
    double n = s.requests > 0 ? static_cast<double>(s.requests) : 1;
    double cpu = info.serverUserSeconds + info.serverSystemSeconds;
    o += ",\"server\":{\"pid\":" + std::to_string(info.serverPid);
    o += ",\"cpu_s\":" + jsonNumber(cpu, 4);
    o += ",\"user_s\":" + jsonNumber(info.serverUserSeconds, 4);
    o += ",\"sys_s\":" + jsonNumber(info.serverSystemSeconds, 4);
    o += ",\"cpu_util\":" + jsonNumber(w > 0 ? cpu / w : 0, 4);
    o += ",\"cpu_us_per_req\":" + jsonNumber(cpu * 1e6 / n, 3);
    o += ",\"user_us_per_req\":" + jsonNumber(info.serverUserSeconds * 1e6 / n, 3);
    o += ",\"sys_us_per_req\":" + jsonNumber(info.serverSystemSeconds * 1e6 / n, 3);
    o += ",\"wakeups\":" + std::to_string(info.serverWakeups);
    o += ",\"wakeups_per_req\":" + jsonNumber(static_cast<double>(info.serverWakeups) / n, 4);
    o += ",\"preemptions\":" + std::to_string(info.serverPreemptions);
    o += "}";
  }
  o += ",\"errors\":" + std::to_string(s.totalErrors());
  o += ",\"errors_by_kind\":{";
  for (int k = 0; k < kErrorKinds; ++k) {
    if (k > 0) o += ",";
    o += jsonString(errorKindName(static_cast<ErrorKind>(k))) + ":" +
         std::to_string(s.errors[static_cast<size_t>(k)]);
  }
  for (int st = 0; st < LoadStats::kMaxStatus; ++st) {
    uint64_t n = s.statusErrors[static_cast<size_t>(st)];
    if (n != 0) o += ",\"status-" + std::to_string(st) + "\":" + std::to_string(n);
  }
  o += "}";
  o += ",\"notes\":[";
  for (size_t i = 0; i < info.notes.size(); ++i) {
    if (i > 0) o += ",";
    o += jsonString(info.notes[i]);
  }
  o += "]}";
  return o;
}

}  // namespace whorl::loadgen
