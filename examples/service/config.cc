#include "examples/service/config.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "framework/base/flags.h"

namespace whorl::service {

namespace {

// Flag values as text, converted and checked once both sources are read.
struct RawConfig {
  std::vector<std::string> listen;
  int shards = 0;
  uint64_t maxConnections = 0;
  double idleTimeout = 300;
  double handshakeTimeout = 10;
  double sendTimeout = 60;
  double drainTimeout = 30;
  std::string logFormat = "text";
  std::string logLevel = "info";
  std::string metrics;
  uint64_t metricsMaxConnections = 16;
  double metricsTimeout = 10;
  std::string proxyProtocol = "off";
  std::string sessionTicketKeys;
  std::string config;
};

void addFlags(Flags& flags, RawConfig& c) {
  flags.add("config", &c.config, "file with one 'key = value' per line (keys: these flag names)");
  flags.add("listen", &c.listen,
            "endpoint to serve (repeatable): tcp:PORT, tcp6:PORT, ssl:PORT:privateKey=FILE"
            "[:caCerts=PATH][:tlsMinimum=V][:tlsMaximum=V][:alpn=P1,P2][:ktls=auto|off|require]"
            "[:interface=ADDR]; escape ':' in values as '\\:', e.g. tcp6:8007:interface=\\:\\:1 "
            "(default: " +
                std::string(kDefaultListen) + ")");
  flags.add("shards", &c.shards, "reactor threads; 0 means one per online CPU");
  flags.add("max-connections", &c.maxConnections,
            "open connections per process; more are closed at once and counted (0: the "
            "open-file limit minus 64, minus --metrics-max-connections with --metrics)");
  flags.add("idle-timeout", &c.idleTimeout,
            "seconds without data from the client before its connection is closed (0: never)");
  flags.add("handshake-timeout", &c.handshakeTimeout,
            "seconds a client gets to complete the TLS handshake (and to send a PROXY header)");
  flags.add("send-timeout", &c.sendTimeout,
            "seconds a client may take no byte of what is sent to it (it stopped reading) before "
            "its connection is reset, also while closing (0: never)");
  flags.add("drain-timeout", &c.drainTimeout,
            "seconds open connections get to finish after SIGTERM before they are closed");
  flags.add("log-format", &c.logFormat, "text or json");
  flags.add("log-level", &c.logLevel, "debug, info, warning or error");
  flags.add("metrics", &c.metrics,
            "endpoint for Prometheus scrapes of /metrics, e.g. tcp:9100:interface=127.0.0.1 "
            "(default: none)");
  flags.add("metrics-max-connections", &c.metricsMaxConnections,
            "open connections to the metrics listener at most; more are closed at once and "
            "counted; the default --max-connections leaves descriptors for them");
  flags.add("metrics-timeout", &c.metricsTimeout,
            "seconds a metrics connection may stay open, idle or not, before it is closed");
  flags.add("proxy-protocol", &c.proxyProtocol,
            "off, v1, v2 or any: every connection starts with a PROXY protocol header from a "
            "load balancer, and the client address it names is the one logged and reported");
  flags.add("session-ticket-keys", &c.sessionTicketKeys,
            "file of TLS session ticket keys shared by a fleet (one `openssl rand -hex 80` per "
            "line, the first encrypts); reloaded on SIGHUP, keeping the previous key for "
            "decryption");
}

Status seconds(std::string_view flag, double value, bool allowZero,
               std::chrono::milliseconds* out) {
  if (!std::isfinite(value) || value < 0 || (!allowZero && value == 0) ||
      value > 365.0 * 24 * 3600) {
    return Status::invalidArgument("--" + std::string(flag) + " must be " +
                                   (allowZero ? "0 or more" : "more than 0") +
                                   " seconds (at most a year)");
  }
  *out = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(value * 1000)));
  return Status::ok();
}

Result<ServiceConfig> finish(const RawConfig& raw) {
  ServiceConfig c;
  c.listen = raw.listen;
  if (c.listen.empty()) c.listen.push_back(kDefaultListen);
  if (raw.shards < 0) return Status::invalidArgument("--shards must be 0 or more");
  c.shards = raw.shards;
  c.maxConnections = raw.maxConnections;
  WHORL_RETURN_IF_ERROR(seconds("idle-timeout", raw.idleTimeout, true, &c.idleTimeout));
  WHORL_RETURN_IF_ERROR(
      seconds("handshake-timeout", raw.handshakeTimeout, false, &c.handshakeTimeout));
  WHORL_RETURN_IF_ERROR(seconds("send-timeout", raw.sendTimeout, true, &c.sendTimeout));
  WHORL_RETURN_IF_ERROR(seconds("drain-timeout", raw.drainTimeout, true, &c.drainTimeout));
  if (!log::parseFormat(raw.logFormat, &c.logFormat)) {
    return Status::invalidArgument("--log-format must be text or json, not '" + raw.logFormat +
                                   "'");
  }
  if (raw.logLevel == "debug") {
    c.logLevel = log::Level::kDebug;
  } else if (raw.logLevel == "info") {
    c.logLevel = log::Level::kInfo;
  } else if (raw.logLevel == "warning") {
    c.logLevel = log::Level::kWarning;
  } else if (raw.logLevel == "error") {
    c.logLevel = log::Level::kError;
  } else {
    return Status::invalidArgument("--log-level must be debug, info, warning or error, not '" +
                                   raw.logLevel + "'");
  }
  c.metrics = raw.metrics;
  if (raw.metricsMaxConnections < 1 || raw.metricsMaxConnections > kMaxMetricsConnections) {
    return Status::invalidArgument("--metrics-max-connections must be 1 to " +
                                   std::to_string(kMaxMetricsConnections));
  }
  c.metricsMaxConnections = raw.metricsMaxConnections;
  WHORL_RETURN_IF_ERROR(
      seconds("metrics-timeout", raw.metricsTimeout, false, &c.metricsTimeout));
  auto mode = net::parseProxyProtocolMode(raw.proxyProtocol);
  if (!mode) return Status::invalidArgument("--proxy-protocol: " + mode.status().message());
  c.proxyProtocol = *mode;
  c.sessionTicketKeys = raw.sessionTicketKeys;
  c.configFile = raw.config;
  return c;
}

// One "key = value" line as the flag argument "--key=value".
struct FileArgument {
  size_t line;
  std::string key;
  std::string arg;
};

// "key = value" lines as flag arguments, with their line numbers.
Result<std::vector<FileArgument>> fileArguments(std::string_view text, std::string_view origin) {
  std::vector<FileArgument> args;
  size_t lineNo = 0;
  while (!text.empty()) {
    ++lineNo;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto trim = [](std::string_view s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
      while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
      }
      return s;
    };
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Status::invalidArgument(std::string(origin) + ":" + std::to_string(lineNo) +
                                     ": expected 'key = value'");
    }
    std::string_view key = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    if (key.empty() || key == "config") {
      return Status::invalidArgument(std::string(origin) + ":" + std::to_string(lineNo) +
                                     (key.empty() ? ": missing key" : ": config files do not nest"));
    }
    args.push_back({lineNo, std::string(key), "--" + std::string(key) + "=" + std::string(value)});
  }
  return args;
}

// Parses a config file's text into `raw` (bound to `flags`), then checks the values; every error
// names the file and the line.
Status parseFile(Flags& flags, RawConfig& raw, std::string_view text, std::string_view origin) {
  auto args = fileArguments(text, origin);
  if (!args) return args.status();
  auto where = [&](size_t line) { return std::string(origin) + ":" + std::to_string(line) + ": "; };
  for (const FileArgument& a : *args) {
    const char* argv[] = {"config", a.arg.c_str()};
    Status s = flags.parse(2, argv);
    if (!s.isOk()) return Status::invalidArgument(where(a.line) + s.message());
  }
  // Value checks (ranges, modes) say "--key ..."; point at the line that set that key.
  auto checked = finish(raw);
  if (!checked) {
    const std::string& m = checked.status().message();
    for (auto it = args->rbegin(); it != args->rend(); ++it) {
      if (m.rfind("--" + it->key, 0) == 0) return Status::invalidArgument(where(it->line) + m);
    }
    return Status::invalidArgument(std::string(origin) + ": " + m);
  }
  return Status::ok();
}

constexpr const char* kDescription =
    "whorl's TLS echo service: echoes every byte back, over TLS or plain TCP, on any number of "
    "listeners. SIGHUP reloads certificates and ticket keys; SIGTERM drains and exits 0.";

}  // namespace

Result<ServiceConfig> parseConfigText(std::string_view text, std::string_view origin) {
  RawConfig raw;
  Flags flags("echo_service", kDescription);
  addFlags(flags, raw);
  WHORL_RETURN_IF_ERROR(parseFile(flags, raw, text, origin));
  return finish(raw);
}

Result<ServiceConfig> loadConfig(int argc, const char* const* argv) {
  // The command line first, to find --config and --help.
  RawConfig cmd;
  Flags cmdFlags("echo_service", kDescription);
  addFlags(cmdFlags, cmd);
  Status s = cmdFlags.parse(argc, argv);
  if (cmdFlags.helpRequested()) {
    std::fputs(cmdFlags.usage().c_str(), stdout);
    std::exit(0);
  }
  WHORL_RETURN_IF_ERROR(s);
  if (!cmdFlags.positional().empty()) {
    return Status::invalidArgument("unexpected argument '" + cmdFlags.positional().front() +
                                   "' (see --help)");
  }
  if (cmd.config.empty()) return finish(cmd);

  std::ifstream in(cmd.config);
  if (!in) {
    return Status::invalidArgument("--config " + cmd.config + ": cannot read the file");
  }
  std::stringstream text;
  text << in.rdbuf();
  // The file's values, then the command line again on top of them.
  RawConfig merged;
  Flags fileFlags("echo_service", kDescription);
  addFlags(fileFlags, merged);
  WHORL_RETURN_IF_ERROR(parseFile(fileFlags, merged, text.str(), cmd.config));
  std::vector<std::string> fileListen = std::move(merged.listen);
  merged.listen.clear();
  Flags overrideFlags("echo_service", kDescription);
  addFlags(overrideFlags, merged);
  WHORL_RETURN_IF_ERROR(overrideFlags.parse(argc, argv));
  if (merged.listen.empty()) merged.listen = std::move(fileListen);
  merged.config = cmd.config;
  return finish(merged);
}

}  // namespace whorl::service
