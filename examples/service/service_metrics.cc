#include "examples/service/service_metrics.h"

#include "framework/tls/tls_layer.h"

namespace whorl::service {

using metrics::Labels;

ServiceMetrics::ServiceMetrics(int shards)
    : registry(shards),
      open(registry.gauge("whorl_connections_open", "Client connections open now.")),
      accepted(registry.counter("whorl_connections_accepted",
                                "Client connections accepted (after any PROXY header).")),
      refusedMaxConnections(registry.counter(
          "whorl_connections_refused", "Client connections closed at once instead of served.",
          {{"reason", "max_connections"}})),
      handshakesOk(registry.counter("whorl_tls_handshakes", "TLS handshakes by result.",
                                    {{"result", "ok"}})),
      handshakesResumed(registry.counter("whorl_tls_handshakes_resumed",
                                         "Completed TLS handshakes that resumed a session.")),
      handshakesFailed(registry.dynamicCounter("whorl_tls_handshakes", "TLS handshakes by result.",
                                               "reason", {{"result", "failed"}})),
      closed(registry.dynamicCounter("whorl_connections_closed",
                                     "Client connections ended, by reason (closed: orderly).",
                                     "reason")),
      bytesReceived(registry.counter("whorl_received_bytes",
                                     "Application bytes received from clients (plaintext).")),
      bytesSent(registry.counter("whorl_sent_bytes",
                                 "Application bytes written to clients (plaintext).")),
      metricsClosed(registry.dynamicCounter(
          "whorl_metrics_connections_closed",
          "Metrics listener connections ended, by reason (closed: orderly; timeout: "
          "--metrics-timeout).",
          "reason")) {}

std::string ServiceMetrics::render(reactor::Runtime& runtime) const {
  std::string out = registry.render();
  // Framework counters that live outside the registry.
  auto perShard = [&](std::string_view name, std::string_view help, auto field) {
    metrics::appendFamilyHeader(out, name, help, metrics::Type::kCounter);
    for (int i = 0; i < runtime.shardCount(); ++i) {
      uint64_t v = field(runtime.shard(i).stats()).load(std::memory_order_relaxed);
      metrics::appendSample(out, name, Labels{{"shard", std::to_string(i)}}, v);
    }
  };
  perShard("whorl_proxy_header_errors_total",
           "Connections closed because their PROXY protocol header was malformed or late.",
           [](const reactor::ShardStats& s) -> const std::atomic<uint64_t>& { return s.proxyErrors; });
  perShard("whorl_accept_errors_total",
           "accept() failures (descriptor or memory exhaustion, aborted connections).",
           [](const reactor::ShardStats& s) -> const std::atomic<uint64_t>& { return s.acceptErrors; });
  perShard("whorl_ring_submit_retries_total",
           "Submissions made early because the io_uring submission queue was full.",
           [](const reactor::ShardStats& s) -> const std::atomic<uint64_t>& { return s.ring.submitRetries; });
  perShard("whorl_ring_cq_overflows_total",
           "Times the io_uring completion queue was found overflowing into the kernel's list.",
           [](const reactor::ShardStats& s) -> const std::atomic<uint64_t>& { return s.ring.cqOverflows; });
  perShard("whorl_ring_cq_dropped_total",
           "io_uring completions the kernel dropped (cq.koverflow): lost operations, never normal.",
           [](const reactor::ShardStats& s) -> const std::atomic<uint64_t>& { return s.ring.cqDropped; });
  tls::TlsModeCounts modes = tls::tlsModeCounts();
  metrics::appendFamilyHeader(out, "whorl_tls_connections_total",
                              "TLS connections by where the record crypto ran.",
                              metrics::Type::kCounter);
  metrics::appendSample(out, "whorl_tls_connections_total", Labels{{"mode", "userspace"}},
                        modes.userspace);
  metrics::appendSample(out, "whorl_tls_connections_total", Labels{{"mode", "kernel_tx"}},
                        modes.kernelTx);
  metrics::appendSample(out, "whorl_tls_connections_total", Labels{{"mode", "kernel_tx_rx"}},
                        modes.kernelTxRx);
  metrics::appendFamilyHeader(out, "whorl_reloads_total",
                              "SIGHUP reloads of certificates and ticket keys, by result.",
                              metrics::Type::kCounter);
  metrics::appendSample(out, "whorl_reloads_total", Labels{{"result", "ok"}},
                        reloadsOk.load(std::memory_order_relaxed));
  metrics::appendSample(out, "whorl_reloads_total", Labels{{"result", "failed"}},
                        reloadsFailed.load(std::memory_order_relaxed));
  if (metricsLimit) {
    metrics::appendFamilyHeader(
        out, "whorl_metrics_connections_refused_total",
        "Metrics listener connections closed at once: --metrics-max-connections were open.",
        metrics::Type::kCounter);
    metrics::appendSample(out, "whorl_metrics_connections_refused_total", Labels{},
                          metricsLimit->refusedCount());
    metrics::appendFamilyHeader(out, "whorl_metrics_connections_open",
                                "Metrics listener connections open now (this scrape's included).",
                                metrics::Type::kGauge);
    metrics::appendSample(out, "whorl_metrics_connections_open", Labels{},
                          metricsLimit->connectionCount());
  }
  return out;
}

}  // namespace whorl::service
