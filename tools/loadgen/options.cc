#include "tools/loadgen/options.h"

#include <charconv>
#include <cmath>

#include "framework/base/flags.h"

namespace whorl::loadgen {

namespace {

constexpr const char* kDescription =
    "Load generator on whorl (io_uring shards, TLS with session resumption). Modes: echo "
    "(messages of --size bytes, --pipeline in flight per connection, every echoed byte checked), "
    "http (HTTP/1.1 keep-alive GETs of --path), handshake (a new connection per request, "
    "optionally with one --request; --resume for session resumption). Closed loop by default; "
    "--rate R for an open loop at R requests/s in total, latency counted from each request's "
    "scheduled time (only requests scheduled after the warm-up count). Runs --warmup then --duration seconds and reports requests/s, MB/s, "
    "handshakes/s, latency percentiles and errors (--json: one line of JSON). Exit status: 0, 1 if "
    "no request succeeded, 2 for bad flags.";

// Flags bound to local variables, shared by parsing and --help.
struct FlagValues {
  std::string mode = "http";
  std::string request = "none";
  std::string hostname;
  std::string sni;
  std::string cpus;
  uint64_t size = 0;
  LoadOptions* o;
};

void addFlags(Flags& flags, FlagValues& v) {
  LoadOptions* o = v.o;
  flags.add("mode", &v.mode, "echo, http or handshake");
  flags.add("target", &o->target, "HOST:PORT to load ([::1]:PORT for IPv6)");
  flags.add("tls", &o->tls, "use TLS (--tls=off for plain TCP)");
  flags.add("hostname", &v.hostname,
            "name to verify in the certificate and send as SNI (default: HOST)");
  flags.add("sni", &v.sni, "same as --hostname");
  flags.add("ca", &o->caPath,
            "PEM file (or directory) of authorities to trust instead of the platform's");
  flags.add("connections", &o->connections, "concurrent connections");
  flags.add("shards", &o->shards, "client reactor threads (connections are spread over them)");
  flags.add("duration", &o->duration, "seconds measured (after the warm-up)");
  flags.add("warmup", &o->warmup, "seconds of load before the measurement starts (not counted)");
  flags.add("rate", &o->rate,
            "open loop: requests per second over all connections (0: closed loop)");
  flags.add("pipeline", &o->pipeline, "requests or messages in flight per connection (echo, http)");
  flags.add("size", &v.size, "echo message size in bytes");
  flags.add("path", &o->path, "HTTP request path");
  flags.add("request", &v.request,
            "handshake mode: none, http or echo: what each connection sends once");
  flags.add("resume", &o->resume, "resume TLS sessions (one session cache per shard)");
  flags.add("timeout", &o->timeout, "seconds allowed for a connect, a handshake or a request");
  flags.add("ktls", &o->ktls, "kernel TLS on the client side: off, auto or require");
  flags.add("cpus", &v.cpus,
            "pin shard i to the i-th CPU of this list, e.g. 1 or 0,2-3 (default: unpinned)");
  flags.add("server-pid", &o->serverPid,
            "the server's process id: report its CPU time and wake-ups per request over the "
            "measured window (from /proc; its threads and child processes count)");
  flags.add("json", &o->json, "print one line of JSON instead of the table");
  flags.add("verbose", &o->verbose, "log whorl's start-up and connection messages");
}

Status bad(const std::string& message) { return Status::invalidArgument(message); }

}  // namespace

const char* toString(Mode mode) {
  switch (mode) {
    case Mode::kEcho:
      return "echo";
    case Mode::kHttp:
      return "http";
    case Mode::kHandshake:
      return "handshake";
  }
  return "?";
}

const char* toString(Request request) {
  switch (request) {
    case Request::kNone:
      return "none";
    case Request::kHttp:
      return "http";
    case Request::kEcho:
      return "echo";
  }
  return "?";
}

Status splitHostPort(const std::string& target, std::string* host, uint16_t* port) {
  std::string h;
  std::string p;
  if (!target.empty() && target[0] == '[') {
    size_t close = target.find(']');
    if (close == std::string::npos || close + 1 >= target.size() || target[close + 1] != ':') {
      return bad("--target: '" + target + "' is not [IPv6]:PORT");
    }
    h = target.substr(1, close - 1);
    p = target.substr(close + 2);
  } else {
    size_t colon = target.rfind(':');
    if (colon == std::string::npos) return bad("--target: '" + target + "' has no :PORT");
    h = target.substr(0, colon);
    p = target.substr(colon + 1);
    if (h.find(':') != std::string::npos) {
      return bad("--target: write IPv6 addresses in brackets: [" + h + "]:" + p);
    }
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (h.empty() || p.empty() || ec != std::errc() || ptr != p.data() + p.size() || value < 1 ||
      value > 65535) {
    return bad("--target: '" + target + "' needs a host and a port from 1 to 65535");
  }
  *host = h;
  *port = static_cast<uint16_t>(value);
  return Status::ok();
}

Status parseCpuList(const std::string& text, std::vector<int>* cpus) {
  cpus->clear();
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    size_t dash = item.find('-');
    std::string_view a = item.substr(0, dash);
    std::string_view b = dash == std::string_view::npos ? a : item.substr(dash + 1);
    int lo = -1, hi = -1;
    auto r1 = std::from_chars(a.data(), a.data() + a.size(), lo);
    auto r2 = std::from_chars(b.data(), b.data() + b.size(), hi);
    if (a.empty() || b.empty() || r1.ec != std::errc() || r2.ec != std::errc() ||
        r1.ptr != a.data() + a.size() || r2.ptr != b.data() + b.size() || lo < 0 || hi < lo ||
        hi > 4095) {
      return bad("--cpus: '" + text + "' is not a CPU list like 1 or 0,2-3");
    }
    for (int c = lo; c <= hi; ++c) cpus->push_back(c);
  }
  if (cpus->empty()) return bad("--cpus: empty CPU list");
  return Status::ok();
}

std::string loadUsage() {
  LoadOptions o;
  FlagValues v;
  v.o = &o;
  v.size = o.size;
  Flags flags("loadgen", kDescription);
  addFlags(flags, v);
  return flags.usage();
}

Status parseLoadOptions(int argc, const char* const* argv, LoadOptions* out) {
  LoadOptions o;
  FlagValues v;
  v.o = &o;
  v.size = o.size;
  Flags flags("loadgen", kDescription);
  addFlags(flags, v);
  WHORL_RETURN_IF_ERROR(flags.parse(argc, argv));
  if (flags.helpRequested()) {
    o.help = true;
    *out = o;
    return Status::ok();
  }
  if (!flags.positional().empty()) {
    return bad("unexpected argument '" + flags.positional()[0] +
               "' (booleans take --name=value, e.g. --tls=off; the target is --target HOST:PORT)");
  }
  if (v.mode == "echo") {
    o.mode = Mode::kEcho;
  } else if (v.mode == "http") {
    o.mode = Mode::kHttp;
  } else if (v.mode == "handshake") {
    o.mode = Mode::kHandshake;
  } else {
    return bad("--mode: '" + v.mode + "' is not echo, http or handshake");
  }
  if (v.request == "none") {
    o.request = Request::kNone;
  } else if (v.request == "http") {
    o.request = Request::kHttp;
  } else if (v.request == "echo") {
    o.request = Request::kEcho;
  } else {
    return bad("--request: '" + v.request + "' is not none, http or echo");
  }
  if (o.mode != Mode::kHandshake && o.request != Request::kNone) {
    return bad("--request applies to --mode=handshake only");
  }
  if (o.target.empty()) return bad("--target HOST:PORT is required");
  WHORL_RETURN_IF_ERROR(splitHostPort(o.target, &o.host, &o.port));
  if (!v.hostname.empty() && !v.sni.empty() && v.hostname != v.sni) {
    return bad("--hostname and --sni name different hosts (" + v.hostname + ", " + v.sni + ")");
  }
  o.hostname = !v.hostname.empty() ? v.hostname : !v.sni.empty() ? v.sni : o.host;
  for (char c : o.hostname) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/') {
      return bad("--hostname: '" + o.hostname + "' is not a host name");
    }
  }
  if (!o.tls && o.resume) return bad("--resume needs TLS (drop --tls=off)");
  if (!o.tls && !o.caPath.empty()) return bad("--ca needs TLS (drop --tls=off)");
  if (o.ktls != "off" && o.ktls != "auto" && o.ktls != "require") {
    return bad("--ktls: '" + o.ktls + "' is not off, auto or require");
  }
  if (o.connections < 1 || o.connections > 1000000) {
    return bad("--connections must be from 1 to 1000000");
  }
  if (o.shards < 1 || o.shards > 1024) return bad("--shards must be from 1 to 1024");
  if (o.pipeline < 1 || o.pipeline > 4096) return bad("--pipeline must be from 1 to 4096");
  if (o.mode == Mode::kHandshake && o.pipeline != 1) {
    return bad(
        "--pipeline applies to echo and http modes (handshake mode: one request per connection)");
  }
  if (!std::isfinite(o.duration) || o.duration <= 0 || o.duration > 1e6) {
    return bad("--duration must be more than 0 seconds");
  }
  if (!std::isfinite(o.warmup) || o.warmup < 0 || o.warmup > 1e6) {
    return bad("--warmup must be 0 or more seconds");
  }
  if (!std::isfinite(o.rate) || o.rate < 0 || o.rate > 1e9) {
    return bad("--rate must be 0 (closed loop) or a positive number of requests per second");
  }
  if (!std::isfinite(o.timeout) || o.timeout <= 0 || o.timeout > 86400) {
    return bad("--timeout must be more than 0 seconds");
  }
  if (v.size < 1 || v.size > 64 * 1024 * 1024) return bad("--size must be from 1 byte to 64 MiB");
  o.size = v.size;
  if (o.path.empty() || o.path[0] != '/') return bad("--path must start with /");
  for (char c : o.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return bad("--path: spaces and control characters must be percent-encoded");
    }
  }
  if (o.serverPid < 0) return bad("--server-pid must be a process id");
  if (!v.cpus.empty()) WHORL_RETURN_IF_ERROR(parseCpuList(v.cpus, &o.cpus));
  *out = o;
  return Status::ok();
}

}  // namespace whorl::loadgen
