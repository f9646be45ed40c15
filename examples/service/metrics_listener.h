// The metrics listener's bounds: at most --metrics-max-connections scrape connections open, each
// closed after --metrics-timeout, every close counted by reason and every refusal counted, so
// that scrapers (or anyone who can reach the port) cannot hold descriptors the clients need.
//
//   auto scrapes = metrics::metricsHttpFactory(render);
//   MetricsListenerLimits limits{.maxConnections = 16, .timeout = 10s};
//   auto factory = boundedMetricsFactory(serviceMetrics, scrapes, limits);  // sets its counters
//   endpoint.listen(factory);
//
// The stack, outermost first: refusals logged (once a second at most); LimitTotalConnectionsFactory;
// TimeoutFactory (idle and total limit both the timeout); closes counted as
// whorl_metrics_connections_closed_total{reason} and logged (info when a limit or an error ended
// it, debug for a scraper's own close); the scrape protocol. ServiceMetrics renders the refusals and the open count
// from the limit factory, which it keeps (ServiceMetrics::metricsLimit). ServiceMetrics must
// outlive the listener's connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "examples/service/service_metrics.h"
#include "framework/api/protocol.h"

namespace whorl::service {

struct MetricsListenerLimits {
  uint64_t maxConnections = 16;
  std::chrono::milliseconds timeout{10000};
};

std::shared_ptr<api::Factory> boundedMetricsFactory(ServiceMetrics& metrics,
                                                    std::shared_ptr<api::Factory> scrapes,
                                                    MetricsListenerLimits limits);

}  // namespace whorl::service
