// echo_service: whorl's TLS echo service, ready for production: any number of listeners (TLS
// and plain TCP), PROXY protocol from a load balancer, session ticket keys shared by a fleet,
// connection limits and timeouts, Prometheus metrics, one log line per connection, certificate
// reload on SIGHUP without dropping a connection, and a drain on SIGTERM. Runs under systemd as
// tools/deploy/whorl-echo.service (Type=notify); README.md § Deploy.
//
//   bazel run //examples:echo_service -- --listen ssl:8443:privateKey=certs/server.pem
//       --listen tcp:8007 --metrics tcp:9100:interface=127.0.0.1     (one command line)
//   kill -HUP <pid>    # new certificate for new handshakes; open connections keep theirs
//   kill -TERM <pid>   # stop accepting, drain for --drain-timeout, exit 0
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <ctime>

#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "framework/base/files.h"
#include "examples/service/config.h"
#include "examples/service/echo_connection.h"
#include "examples/service/metrics_listener.h"
#include "examples/service/service_metrics.h"
#include "framework/base/log.h"
#include "framework/base/systemd.h"
#include "framework/endpoint/description.h"
#include "framework/metrics/metrics_http.h"
#include "framework/base/ktls_probe.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/ticket_keys.h"
#include "framework/tls/tls_layer.h"

using namespace whorl;

namespace {

// One --listen: its description (re-read on reload) and, for TLS, the factory whose context a
// reload replaces.
struct Listener {
  std::string description;
  std::shared_ptr<tls::TlsFactory> tls;
  std::unique_ptr<endpoint::ListeningPort> port;
};

// Rewrites the example-relative certificate paths of the default listener so that it works
// from `bazel run` and from the repository root alike.
std::string resolveDefault(const std::string& description) {
  if (description != service::kDefaultListen) return description;
  return "ssl:8000:privateKey=" + findDataFile("certs/server.pem");
}

// The service-wide TLS settings every ssl: listener gets on top of its own description.
struct TlsSettings {
  std::chrono::milliseconds handshakeTimeout;
  std::shared_ptr<tls::TicketKeys> ticketKeys;
};

// Parses `description`, reads its certificate files, and builds the server context.
Result<endpoint::ServerSpec> loadSpec(const std::string& description, const TlsSettings& tls) {
  auto spec = endpoint::serverSpecFromString(description);
  if (!spec) return spec.status();
  if (spec->tls) {
    spec->tls->handshakeTimeout = tls.handshakeTimeout;
    spec->tls->sessionTicketKeys = tls.ticketKeys;
  }
  return spec;
}

// Subject, serial and expiry: a renewed certificate usually keeps its subject, so the log must
// show what else changed.
std::string certificateSummary(const tls::CertificateOptions& options) {
  const tls::Certificate& c = options.certificate;
  std::time_t notAfter = std::chrono::system_clock::to_time_t(c.notAfter());
  std::tm utc{};
  gmtime_r(&notAfter, &utc);
  char expiry[32];
  std::strftime(expiry, sizeof(expiry), "%Y-%m-%d", &utc);
  return c.toString() + " serial " + c.serialNumber() + ", valid until " + expiry;
}

// Descriptors the process needs besides client connections: rings, listeners, logs, the
// resolver (64), and the metrics listener's connections, which have a limit of their own.
uint64_t descriptorReserve(const service::ServiceConfig& config) {
  return 64 + (config.metrics.empty() ? 0 : config.metricsMaxConnections);
}

// The open-file limit, or 0 if there is none.
uint64_t openFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 0;
  return rl.rlim_cur;
}

uint64_t defaultMaxConnections(const service::ServiceConfig& config) {
  uint64_t limit = openFileLimit();
  if (limit == 0) return 0;
  uint64_t reserve = descriptorReserve(config);
  return limit > reserve ? limit - reserve : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Until Runtime::run() reads them, hold SIGHUP/SIGTERM/SIGINT back instead of letting their
  // default action kill the process while it opens its listeners: one sent right after start-up
  // (a reload, a stop) is then handled once run() starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto config = service::loadConfig(argc, argv);
  if (!config) {
    std::fprintf(stderr, "echo_service: %s\n", config.status().message().c_str());
    return 2;
  }
  log::setFormat(config->logFormat);
  log::setLevel(config->logLevel);

  TlsSettings tlsSettings{config->handshakeTimeout, nullptr};
  if (!config->sessionTicketKeys.empty()) {
    auto keys = tls::TicketKeys::loadFile(config->sessionTicketKeys);
    if (!keys) {
      std::fprintf(stderr, "echo_service: --session-ticket-keys: %s\n",
                   keys.status().message().c_str());
      return 2;
    }
    tlsSettings.ticketKeys = *keys;
  }
  // Check every listener (and load its certificates) before starting anything.
  std::vector<Listener> listeners;
  std::vector<endpoint::ServerSpec> specs;
  for (const std::string& raw : config->listen) {
    std::string description = resolveDefault(raw);
    auto spec = loadSpec(description, tlsSettings);
    if (!spec) {
      std::fprintf(stderr, "echo_service: --listen: %s\n", spec.status().message().c_str());
      return 2;
    }
    listeners.push_back(Listener{description, nullptr, nullptr});
    specs.push_back(std::move(*spec));
  }
  std::optional<endpoint::ServerSpec> metricsSpec;
  if (!config->metrics.empty()) {
    auto spec = endpoint::serverSpecFromString(config->metrics);
    if (!spec) {
      std::fprintf(stderr, "echo_service: --metrics: %s\n", spec.status().message().c_str());
      return 2;
    }
    metricsSpec = std::move(*spec);
  }

  reactor::RuntimeOptions ro;
  ro.shards = config->shards;
  ro.drainTimeout = config->drainTimeout;
  reactor::Runtime runtime(ro);
  service::ServiceMetrics metrics(runtime.shardCount());
  service::ServiceState state{metrics, {}};
  state.limits.maxConnections =
      config->maxConnections != 0 ? config->maxConnections : defaultMaxConnections(*config);
  if (uint64_t files = openFileLimit();
      config->maxConnections != 0 && files != 0 &&
      config->maxConnections + descriptorReserve(*config) > files) {
    WHORL_LOG(kWarning,
              "--max-connections %llu leaves fewer than %llu of the %llu open files for the "
              "service itself%s: accepts may fail with \"Too many open files\" (raise ulimit -n "
              "/ LimitNOFILE, or leave --max-connections at 0)",
              static_cast<unsigned long long>(config->maxConnections),
              static_cast<unsigned long long>(descriptorReserve(*config)),
              static_cast<unsigned long long>(files),
              config->metrics.empty() ? "" : " and --metrics-max-connections");
  }
  state.limits.idleTimeout = config->idleTimeout;

  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "echo_service: %s\n", s.message().c_str());
    return 1;
  }
  bool anyKtls = false;
  for (size_t i = 0; i < listeners.size(); ++i) {
    Listener& l = listeners[i];
    endpoint::ServerSpec& spec = specs[i];
    bool tls = spec.tls.has_value();
    std::shared_ptr<api::Factory> stack =
        std::make_shared<service::ServiceFactory>(state, l.description, tls);
    if (tls) {
      auto context = spec.tls->context();
      if (!context) {
        std::fprintf(stderr, "echo_service: --listen %s: %s\n", l.description.c_str(),
                     context.status().message().c_str());
        return 1;
      }
      anyKtls = anyKtls || spec.tls->ktls != tls::KtlsMode::kOff;
      l.tls = std::make_shared<tls::TlsFactory>(*context, stack);
      stack = l.tls;
    }
    spec.tcp.transport.proxyProtocol = config->proxyProtocol;
    spec.tcp.transport.proxyHeaderTimeout = config->handshakeTimeout;
    spec.tcp.transport.sendTimeout = config->sendTimeout;
    std::string certificate = tls ? certificateSummary(*spec.tls) : "";
    auto port = endpoint::TCPServerEndpoint(runtime, spec.family, spec.port, spec.tcp)
                    .listen(std::make_shared<service::AdmissionFactory>(state, stack));
    if (!port) {
      std::fprintf(stderr, "echo_service: --listen %s: %s\n", l.description.c_str(),
                   port.status().message().c_str());
      return 1;
    }
    WHORL_LOG(kInfo, "listening on %s (%s%s%s%s)", (*port)->getHost().toString().c_str(),
              tls ? "TLS, " : "plain TCP", certificate.c_str(),
              config->proxyProtocol != net::ProxyProtocolMode::kOff ? ", PROXY protocol " : "",
              config->proxyProtocol != net::ProxyProtocolMode::kOff
                  ? net::toString(config->proxyProtocol)
                  : "");
    l.port = std::move(*port);
  }
  // Say at start-up whether the kernel will take the record crypto (logged once per process).
  if (anyKtls) (void)whorl::kernelTlsSupport();

  std::unique_ptr<endpoint::ListeningPort> metricsPort;
  if (metricsSpec) {
    auto scrapes = metrics::metricsHttpFactory([&metrics, &runtime] {
      return metrics.render(runtime);
    });
    auto factory = service::boundedMetricsFactory(
        metrics, scrapes, {.maxConnections = config->metricsMaxConnections,
                           .timeout = config->metricsTimeout});
    // A scraper that stops reading is cut off within the metrics timeout too.
    auto& transport = metricsSpec->tcp.transport;
    transport.sendTimeout = config->sendTimeout.count() > 0
                                ? std::min(config->sendTimeout, config->metricsTimeout)
                                : config->metricsTimeout;
    if (metricsSpec->tls) {
      metricsSpec->tls->handshakeTimeout =
          std::min(config->handshakeTimeout, config->metricsTimeout);
    }
    auto port = endpoint::serverFromSpec(runtime, std::move(*metricsSpec))->listen(factory);
    if (!port) {
      std::fprintf(stderr, "echo_service: --metrics %s: %s\n", config->metrics.c_str(),
                   port.status().message().c_str());
      return 1;
    }
    metricsPort = std::move(*port);
    WHORL_LOG(kInfo, "metrics on http://%s/metrics", metricsPort->getHost().toString().c_str());
    WHORL_LOG(kInfo, "metrics listener: metrics-max-connections %llu, metrics-timeout %.3g s",
              static_cast<unsigned long long>(config->metricsMaxConnections),
              config->metricsTimeout.count() / 1000.0);
  }
  WHORL_LOG(kInfo, "echo service: %d shard%s, max-connections %llu, idle-timeout %.3g s, "
            "handshake-timeout %.3g s, send-timeout %.3g s, drain-timeout %.3g s",
            runtime.shardCount(), runtime.shardCount() == 1 ? "" : "s",
            static_cast<unsigned long long>(state.limits.maxConnections),
            config->idleTimeout.count() / 1000.0, config->handshakeTimeout.count() / 1000.0,
            config->sendTimeout.count() / 1000.0, config->drainTimeout.count() / 1000.0);

  // SIGHUP: every TLS listener re-reads its files; one that fails keeps what it had. Runs on
  // run()'s thread; shards pick the new context up at their next accept.
  auto reload = [&] {
    (void)notifySystemd("RELOADING=1");
    bool ok = true;
    if (tlsSettings.ticketKeys) {
      if (Status s = tlsSettings.ticketKeys->reload(config->sessionTicketKeys); !s.isOk()) {
        WHORL_LOG(kError, "reload: session ticket keys kept as they were: %s", s.message().c_str());
        ok = false;
      } else {
        WHORL_LOG(kInfo, "reload: session ticket keys from %s (%zu key%s)",
                  config->sessionTicketKeys.c_str(), tlsSettings.ticketKeys->keyCount(),
                  tlsSettings.ticketKeys->keyCount() == 1 ? "" : "s");
      }
    }
    for (Listener& l : listeners) {
      if (!l.tls) continue;
      auto spec = loadSpec(l.description, tlsSettings);
      Result<std::shared_ptr<tls::TlsContext>> context =
          spec ? spec->tls->context() : Result<std::shared_ptr<tls::TlsContext>>(spec.status());
      if (!context) {
        WHORL_LOG(kError, "reload: %s keeps its current certificate: %s", l.description.c_str(),
                  context.status().message().c_str());
        ok = false;
        continue;
      }
      l.tls->setContext(*context);
      WHORL_LOG(kInfo, "reload: %s now serves %s", l.description.c_str(),
                certificateSummary(*spec->tls).c_str());
    }
    (ok ? metrics.reloadsOk : metrics.reloadsFailed).fetch_add(1, std::memory_order_relaxed);
    (void)notifySystemd("READY=1");
  };
  reactor::RunHooks hooks;
  hooks.ready = [] {
    if (Status s = notifySystemd("READY=1"); !s.isOk()) {
      WHORL_LOG(kWarning, "systemd notification failed: %s", s.message().c_str());
    }
  };
  hooks.reload = reload;
  hooks.stopping = [] { (void)notifySystemd("STOPPING=1"); };
  int rc = runtime.run(hooks);
  return rc;
}
