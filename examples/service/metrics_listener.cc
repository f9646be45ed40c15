#include "examples/service/metrics_listener.h"

#include <atomic>

#include "examples/service/classify.h"
#include "framework/api/policies.h"
#include "framework/base/log.h"
#include "framework/reactor/shard.h"

namespace whorl::service {

namespace {

int currentShard() {
  reactor::Shard* s = reactor::Shard::current();
  return s != nullptr ? s->index() : 0;
}

// Counts and logs how a scrape connection ended.
class CountedScrape final : public api::ProtocolWrapper {
 public:
  CountedScrape(std::unique_ptr<api::Protocol> wrapped, ServiceMetrics& metrics)
      : ProtocolWrapper(std::move(wrapped)), metrics_(metrics) {}
  void connectionMade() override {
    start_ = transport()->reactor().now();
    ProtocolWrapper::connectionMade();
  }
  void connectionLost(const Status& reason) override {
    std::string_view kind = closeKind(reason);
    metrics_.metricsClosed.inc(currentShard(), kind);
    log::Level level = reason.isCleanClose() ? log::Level::kDebug : log::Level::kInfo;
    if (log::enabled(level)) {
      auto duration = std::chrono::duration_cast<std::chrono::microseconds>(
          transport()->reactor().now() - start_);
      log::event(level, "metrics connection closed",
                 {{"peer", transport()->getPeer().toString()},
                  {"duration_ms", static_cast<double>(duration.count()) / 1000.0},
                  {"kind", kind},
                  {"reason", reason.message()}});
    }
    ProtocolWrapper::connectionLost(reason);
  }

 private:
  ServiceMetrics& metrics_;
  std::chrono::steady_clock::time_point start_;
};

class CountingFactory final : public api::WrappingFactory {
 public:
  CountingFactory(std::shared_ptr<api::Factory> wrapped, ServiceMetrics& metrics)
      : WrappingFactory(std::move(wrapped)), metrics_(metrics) {}

 protected:
  std::unique_ptr<api::Protocol> wrap(std::unique_ptr<api::Protocol> p) override {
    return std::make_unique<CountedScrape>(std::move(p), metrics_);
  }

 private:
  ServiceMetrics& metrics_;
};

// Logs the limit's refusals, once a second at most (a flood must not flood the log too).
class RefusalLog final : public api::Factory {
 public:
  explicit RefusalLog(std::shared_ptr<api::LimitTotalConnectionsFactory> limit)
      : limit_(std::move(limit)) {}
  std::unique_ptr<api::Protocol> buildProtocol(const Address& peer) override {
    auto p = limit_->build(peer);
    if (p) return p;
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
    int64_t last = lastLog_.load(std::memory_order_relaxed);
    if (now != last && lastLog_.compare_exchange_strong(last, now)) {
      WHORL_LOG(kWarning,
                "metrics-max-connections (%llu) reached: closing new metrics connections (%s "
                "and others, see whorl_metrics_connections_refused_total)",
                static_cast<unsigned long long>(limit_->limit()), peer.toString().c_str());
    }
    return nullptr;
  }
  void stopRequested(api::Reactor::Clock::time_point deadline) override {
    limit_->stopRequested(deadline);
  }

 private:
  std::shared_ptr<api::LimitTotalConnectionsFactory> limit_;
  std::atomic<int64_t> lastLog_{0};
};

}  // namespace

std::shared_ptr<api::Factory> boundedMetricsFactory(ServiceMetrics& metrics,
                                                    std::shared_ptr<api::Factory> scrapes,
                                                    MetricsListenerLimits limits) {
  // Counting inside the timeouts: TimeoutFactory tells the protocol it wraps which limit ended
  // the connection (the transport only saw an orderly close).
  auto counted = std::make_shared<CountingFactory>(std::move(scrapes), metrics);
  auto timed = std::make_shared<api::TimeoutFactory>(
      std::move(counted), api::TimeoutOptions{.idle = limits.timeout, .total = limits.timeout});
  auto limit =
      std::make_shared<api::LimitTotalConnectionsFactory>(std::move(timed), limits.maxConnections);
  metrics.metricsLimit = limit;
  return std::make_shared<RefusalLog>(std::move(limit));
}

}  // namespace whorl::service
