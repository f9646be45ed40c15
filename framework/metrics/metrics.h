// Metrics: per-shard counters and gauges, rendered in the Prometheus text exposition format 0.0.4.
//
//   metrics::Registry registry(runtime.shardCount());  // at start-up, before traffic
//   auto& accepted = registry.counter("whorl_connections_accepted", "Connections accepted.");
//   auto& ok = registry.counter("whorl_handshakes", "TLS handshakes.", {{"result", "ok"}});
//   auto& failed = registry.dynamicCounter("whorl_handshakes", "TLS handshakes.", "reason",
//                                          {{"result", "failed"}});
//   auto& open = registry.gauge("whorl_connections_open", "Connections open now.");
//
//   // On a shard thread, with that shard's index (reactor::Shard::current()->index()):
//   accepted.inc(shard);
//   open.add(shard, +1);  ...  open.add(shard, -1);
//   failed.inc(shard, "certificate");  // {result="failed",reason="certificate",shard="<shard>"}
//
//   // From any thread (the /metrics handler, metrics_http.h):
//   std::string text = registry.render();
//
// Hot path. Each shard writes only its own cells: a relaxed fetch_add (or store, Gauge::set) on a
// 64-bit atomic in memory that no other shard writes. Cells are carved out of per-shard slabs
// aligned to kCacheLine, so two shards never share a cache line (no false sharing) while one
// shard's cells sit densely together. fetch_add rather than load+store: it costs a few cycles more
// on a line the core already owns, but a stray increment from another thread (start-up code, a
// callback on the wrong shard) stays exact instead of losing updates. No locks, no allocation.
// A scrape reads every cell with relaxed loads: each value is exact for its cell, a sum across
// shards is not one atomic snapshot, but successive scrapes never see a counter go backwards.
//
// Dynamic families (DynamicCounter: errors by kind, handshake failures by reason) take their last
// label value at run time. Each shard keeps a small std::map guarded by its own mutex: the shard
// thread locks only its own (uncontended but for a concurrent scrape), and a new key allocates.
// That is fine for rare events, not for per-request counting; use a fixed Counter there. Keys are
// capped per shard (maxKeys, default 32): further new keys count under "other", so a peer that
// controls the key (a reason string) cannot grow the exposition without bound.
//
// Families. Series sharing a name form one family with one HELP and TYPE; every series of a
// family is printed together, families sorted by name, series in registration order (dynamic
// keys sorted), then by shard. Counter names get "_total" appended unless they end with it.
// Per-shard families (ShardLabel::kPerShard, the default) print one series per shard with a
// trailing shard="N" label; kSummed prints the sum across shards, with no shard label.
//
// Misuse is a programming error found at start-up and aborts with a message: an invalid metric
// or label name, a duplicate or reserved ("shard", "__*") label name, a family registered again
// with another type, HELP or ShardLabel. Registering the exact same series again returns the
// existing handle. Label values, keys and HELP may hold anything: they are escaped, and invalid
// UTF-8 is replaced by U+FFFD (Prometheus rejects a scrape holding invalid UTF-8).
//
// Ownership: the Registry owns every metric; the references it hands out stay valid until it is
// destroyed, so it must outlive every thread that increments. Registration and render() are
// thread-safe (a registry mutex, never taken by inc/add/set) and may run at any time.
#pragma once

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace whorl::metrics {

// Label name/value pairs, printed in this order.
using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type { kCounter, kGauge };

// How a family exposes its per-shard values.
enum class ShardLabel {
  kPerShard,  // one series per shard, with shard="N" as the last label
  kSummed,    // one series: the sum over shards
};

// 128 bytes, not 64: x86's adjacent-line prefetcher pulls lines in pairs, and some cores (Apple,
// POWER) have 128-byte lines. The cost is at most one mostly-empty chunk per shard.
inline constexpr size_t kCacheLine = 128;

class Registry;

// A monotonically increasing count per shard.
class Counter {
 public:
  // `shard` in [0, shardCount); meant to be called by that shard's thread.
  void inc(int shard, uint64_t n = 1) {
    assert(shard >= 0 && static_cast<size_t>(shard) < cells_.size());
    cells_[static_cast<size_t>(shard)]->fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t value(int shard) const;
  uint64_t value() const;  // the sum over shards

 private:
  friend class Registry;
  explicit Counter(std::vector<std::atomic<uint64_t>*> cells) : cells_(std::move(cells)) {}
  std::vector<std::atomic<uint64_t>*> cells_;  // one per shard, into that shard's slab
};

// A value per shard that goes up and down (open connections). A shard's value may go negative
// (only the sum is meaningful if shards add and remove for each other).
class Gauge {
 public:
  void add(int shard, int64_t delta) {
    assert(shard >= 0 && static_cast<size_t>(shard) < cells_.size());
    // Two's complement in an unsigned cell: wraps modulo 2^64, read back as int64_t.
    cells_[static_cast<size_t>(shard)]->fetch_add(static_cast<uint64_t>(delta),
                                                  std::memory_order_relaxed);
  }
  void set(int shard, int64_t value) {
    assert(shard >= 0 && static_cast<size_t>(shard) < cells_.size());
    cells_[static_cast<size_t>(shard)]->store(static_cast<uint64_t>(value),
                                              std::memory_order_relaxed);
  }
  int64_t value(int shard) const;
  int64_t value() const;  // the sum over shards

 private:
  friend class Registry;
  explicit Gauge(std::vector<std::atomic<uint64_t>*> cells) : cells_(std::move(cells)) {}
  std::vector<std::atomic<uint64_t>*> cells_;
};

// A counter family whose last label takes its value at run time (see the top of this file).
class DynamicCounter {
 public:
  static constexpr std::string_view kOverflowKey = "other";

  // Locks this shard's mutex; allocates only for a key new to this shard.
  void inc(int shard, std::string_view key, uint64_t n = 1);
  uint64_t value(int shard, std::string_view key) const;
  uint64_t value(std::string_view key) const;  // the sum over shards
  // Every key seen on any shard with its per-shard counts (shardCount entries, 0 where unseen).
  std::map<std::string, std::vector<uint64_t>> snapshot() const;

 private:
  friend class Registry;
  DynamicCounter(int shards, size_t maxKeys);

  struct alignas(kCacheLine) PerShard {
    mutable std::mutex mu;
    std::map<std::string, uint64_t, std::less<>> counts;
  };
  std::unique_ptr<PerShard[]> shards_;
  size_t shardCount_;
  size_t maxKeys_;
};

class Registry {
 public:
  explicit Registry(int shards);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  int shardCount() const { return shards_; }

  // One fixed series of family `name` (counters: `name` + "_total" unless it ends so).
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {},
                   ShardLabel shardLabel = ShardLabel::kPerShard);
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {},
               ShardLabel shardLabel = ShardLabel::kPerShard);
  // Series `labels` + {labelName=<key>} for every key incremented at run time.
  DynamicCounter& dynamicCounter(std::string_view name, std::string_view help,
                                 std::string_view labelName, Labels labels = {},
                                 ShardLabel shardLabel = ShardLabel::kPerShard,
                                 size_t maxKeys = 32);

  // The exposition text of every family (see the top of this file for the order).
  std::string render() const;

 private:
  struct Series;
  struct Family;
  class Slab;

  Family& family(std::string name, std::string_view help, Type type, ShardLabel shardLabel);
  std::vector<std::atomic<uint64_t>*> allocateCells();

  const int shards_;
  mutable std::mutex mu_;  // guards families_ and slabs_, never the cells themselves
  std::map<std::string, Family, std::less<>> families_;
  std::vector<std::unique_ptr<Slab>> slabs_;  // one per shard
};

// --- Writing the format by hand (process-wide values computed at scrape time) ---
// The caller keeps names unique across what it appends and what a Registry renders.

// "# HELP name help\n# TYPE name counter|gauge\n". `name` is printed as given.
void appendFamilyHeader(std::string& out, std::string_view name, std::string_view help, Type type);
// "name{k="v",...} value\n" (no braces without labels).
void appendSample(std::string& out, std::string_view name, const Labels& labels, uint64_t value);
void appendSample(std::string& out, std::string_view name, const Labels& labels, int64_t value);
// Shortest round-trip decimal; NaN, +Inf and -Inf as the format spells them.
void appendSample(std::string& out, std::string_view name, const Labels& labels, double value);

// A label value escaped for the format: \ " and newline as \\ \" \n; invalid UTF-8 as U+FFFD.
std::string escapeLabelValue(std::string_view value);
// HELP text escaped: \ and newline only (the format does not escape quotes there).
std::string escapeHelp(std::string_view help);
bool isValidMetricName(std::string_view name);  // [a-zA-Z_:][a-zA-Z0-9_:]*
bool isValidLabelName(std::string_view name);   // [a-zA-Z_][a-zA-Z0-9_]*, not "__"-prefixed

}  // namespace whorl::metrics
