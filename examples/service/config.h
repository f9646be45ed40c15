// The echo service's configuration: command-line flags and an optional config file with the same
// keys.
//
//   auto config = service::loadConfig(argc, argv);   // --help prints usage and exits 0
//   if (!config) { fprintf(stderr, "%s\n", config.status().message().c_str()); return 2; }
//
// The config file (--config FILE) holds one "key = value" per line, the keys being the flag
// names without "--"; '#' starts a comment line. Flags on the command line override the file;
// `listen` lines accumulate, and any --listen on the command line replaces the file's list.
// Values are checked here (timeouts, modes, log format), endpoints when the service opens them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "framework/base/log.h"
#include "framework/base/status.h"
#include "framework/net/proxy_protocol.h"

namespace whorl::service {

struct ServiceConfig {
  std::vector<std::string> listen;  // endpoint strings: tcp:..., tcp6:..., ssl:...
  int shards = 0;                   // 0: one per online CPU
  uint64_t maxConnections = 0;      // per process; 0: the open-file limit minus a reserve
                                    // (64, plus metricsMaxConnections with a metrics listener)
  std::chrono::milliseconds idleTimeout{300000};  // 0: none
  std::chrono::milliseconds handshakeTimeout{10000};
  std::chrono::milliseconds sendTimeout{60000};  // no byte taken by a client for this long; 0: none
  std::chrono::milliseconds drainTimeout{30000};
  log::Format logFormat = log::Format::kText;
  log::Level logLevel = log::Level::kInfo;
  std::string metrics;  // endpoint string for /metrics; empty: none
  uint64_t metricsMaxConnections = 16;            // open /metrics connections at most
  std::chrono::milliseconds metricsTimeout{10000};  // a /metrics connection's whole life at most
  net::ProxyProtocolMode proxyProtocol = net::ProxyProtocolMode::kOff;
  std::string sessionTicketKeys;  // file; empty: per-process random keys
  std::string configFile;
};

// The listener used when neither the flags nor the file name one: TLS on port 8000 with the
// repository's example certificate (what `tools/dev run` serves).
// --metrics-max-connections at most: scrapers are few, and each place is a descriptor taken from
// the clients' share.
inline constexpr uint64_t kMaxMetricsConnections = 1024;

inline constexpr const char* kDefaultListen = "ssl:8000:privateKey=certs/server.pem";

// Parses argv (and the file named by --config). On --help prints usage to stdout and exits 0.
Result<ServiceConfig> loadConfig(int argc, const char* const* argv);

// The same, from a config file's text alone (for tests): `origin` names it in errors.
Result<ServiceConfig> parseConfigText(std::string_view text, std::string_view origin);

}  // namespace whorl::service
