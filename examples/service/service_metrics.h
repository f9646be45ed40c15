// The echo service's metrics: one Registry with a handle per series, plus the process-wide
// values (TLS modes, PROXY and accept errors, reloads, the metrics listener's refusals) added at
// scrape time.
//
//   ServiceMetrics m(runtime.shardCount());
//   m.accepted.inc(shard);                         // on the connection's shard
//   std::string text = m.render(runtime);         // /metrics, from any thread
//
// Names follow Prometheus conventions (whorl_ prefix, _total counters, _bytes units); every
// per-shard series carries shard="N". The object must outlive the runtime's shards.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "framework/api/policies.h"
#include "framework/metrics/metrics.h"
#include "framework/reactor/runtime.h"

namespace whorl::service {

struct ServiceMetrics {
  explicit ServiceMetrics(int shards);

  metrics::Registry registry;
  metrics::Gauge& open;
  metrics::Counter& accepted;
  metrics::Counter& refusedMaxConnections;
  metrics::Counter& handshakesOk;
  metrics::Counter& handshakesResumed;
  metrics::DynamicCounter& handshakesFailed;  // by handshakeFailureKind
  metrics::DynamicCounter& closed;            // by closeKind (incl. send_timeout), idle_timeout
  metrics::Counter& bytesReceived;
  metrics::Counter& bytesSent;
  metrics::DynamicCounter& metricsClosed;  // metrics listener connections, by closeKind
  std::atomic<uint64_t> reloadsOk{0};
  std::atomic<uint64_t> reloadsFailed{0};
  // The metrics listener's limit (boundedMetricsFactory sets it): its refusals and open count.
  std::shared_ptr<const api::LimitTotalConnectionsFactory> metricsLimit;

  std::string render(reactor::Runtime& runtime) const;
};

}  // namespace whorl::service
