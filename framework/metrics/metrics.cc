#include "framework/metrics/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <system_error>

namespace whorl::metrics {

namespace {

// Registration errors are programming errors (names are constants in the code): fail at start-up,
// loudly, rather than serve a scrape Prometheus would reject. stderr directly: the log level may
// be off.
[[noreturn]] void misuse(const std::string& what) {
  std::fprintf(stderr, "whorl::metrics: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

constexpr std::string_view kShardLabel = "shard";
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

// The length of the well-formed UTF-8 sequence starting at s[i], or 0 if it is not one (overlong
// forms, surrogates and code points past U+10FFFF are not: the Unicode table 3-7 ranges).
size_t utf8Sequence(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return len;
}

// Escapes \ and newline (and " if `quote`), replacing each byte of invalid UTF-8 by U+FFFD.
void appendEscaped(std::string& out, std::string_view s, bool quote) {
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else if (static_cast<unsigned char>(c) < 0x80) {
      out += c;
    } else {
      size_t len = utf8Sequence(s, i);
      if (len == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    ++i;
  }
}

// `k="v",k2="v2"`: the inside of the braces.
void appendLabels(std::string& out, const Labels& labels) {
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    appendEscaped(out, value, true);
    out += '"';
  }
}

// One sample line from an already escaped label list (without braces).
void appendLine(std::string& out, std::string_view name, std::string_view labels,
                std::string_view value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

template <typename Int>
std::string_view formatInt(char (&buf)[32], Int v) {
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string_view(buf, static_cast<size_t>(r.ptr - buf));
}

std::string_view formatDouble(char (&buf)[32], double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest form that reads back exactly
  return std::string_view(buf, static_cast<size_t>(r.ptr - buf));
}

// Per-shard values (uint64 cells, gauges read as two's complement) as the family's series: one
// line per shard with shard="N" appended, or one line with the sum.
void appendValues(std::string& out, std::string_view name, const std::string& labels, Type type,
                  ShardLabel shardLabel, const std::vector<uint64_t>& values) {
  char buf[32];
  auto format = [&](uint64_t v) {
    return type == Type::kGauge ? formatInt(buf, static_cast<int64_t>(v)) : formatInt(buf, v);
  };
  if (shardLabel == ShardLabel::kSummed) {
    uint64_t sum = 0;
    for (uint64_t v : values) sum += v;  // modulo 2^64: right for gauges' negative parts too
    appendLine(out, name, labels, format(sum));
    return;
  }
  std::string withShard;
  for (size_t shard = 0; shard < values.size(); ++shard) {
    withShard = labels;
    if (!withShard.empty()) withShard += ',';
    withShard += kShardLabel;
    withShard += "=\"";
    withShard += std::to_string(shard);
    withShard += '"';
    appendLine(out, name, withShard, format(values[shard]));
  }
}

// Sorted "name=value" pairs, unambiguous (escaped), to recognise the same series registered twice.
std::string seriesKey(Labels labels, std::string_view dynamicLabel) {
  std::sort(labels.begin(), labels.end());
  std::string key;
  appendLabels(key, labels);
  if (!dynamicLabel.empty()) {
    key += "|dynamic:";
    key += dynamicLabel;
  }
  return key;
}

void checkLabelName(std::string_view metric, std::string_view label, ShardLabel shardLabel) {
  if (!isValidLabelName(label)) {
    misuse("metric " + std::string(metric) + ": invalid label name \"" + std::string(label) + "\"");
  }
  if (label == kShardLabel && shardLabel == ShardLabel::kPerShard) {
    misuse("metric " + std::string(metric) +
           ": label \"shard\" is added by the registry to per-shard series");
  }
}

void checkLabels(std::string_view metric, const Labels& labels, std::string_view dynamicLabel,
                 ShardLabel shardLabel) {
  std::vector<std::string_view> names;
  for (const auto& [name, value] : labels) names.push_back(name);
  if (!dynamicLabel.empty()) names.push_back(dynamicLabel);
  for (std::string_view name : names) checkLabelName(metric, name, shardLabel);
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  if (dup != names.end()) {
    misuse("metric " + std::string(metric) + ": label \"" + std::string(*dup) + "\" given twice");
  }
}

std::string counterName(std::string_view name) {
  std::string n(name);
  if (!n.ends_with("_total")) n += "_total";
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

bool isValidMetricName(std::string_view name) {
  if (name.empty() || !(isNameStart(name[0]) || name[0] == ':')) return false;
  for (char c : name) {
    if (!(isNameStart(c) || isDigit(c) || c == ':')) return false;
  }
  return true;
}

bool isValidLabelName(std::string_view name) {
  if (name.empty() || !isNameStart(name[0]) || name.starts_with("__")) return false;
  for (char c : name) {
    if (!(isNameStart(c) || isDigit(c))) return false;
  }
  return true;
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  appendEscaped(out, value, true);
  return out;
}

std::string escapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  appendEscaped(out, help, false);
  return out;
}

void appendFamilyHeader(std::string& out, std::string_view name, std::string_view help, Type type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  appendEscaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += type == Type::kCounter ? " counter\n" : " gauge\n";
}

void appendSample(std::string& out, std::string_view name, const Labels& labels, uint64_t value) {
  std::string l;
  appendLabels(l, labels);
  char buf[32];
  appendLine(out, name, l, formatInt(buf, value));
}

void appendSample(std::string& out, std::string_view name, const Labels& labels, int64_t value) {
  std::string l;
  appendLabels(l, labels);
  char buf[32];
  appendLine(out, name, l, formatInt(buf, value));
}

void appendSample(std::string& out, std::string_view name, const Labels& labels, double value) {
  std::string l;
  appendLabels(l, labels);
  char buf[32];
  appendLine(out, name, l, formatDouble(buf, value));
}

// ---------------------------------------------------------------------------------------------

uint64_t Counter::value(int shard) const {
  assert(shard >= 0 && static_cast<size_t>(shard) < cells_.size());
  return cells_[static_cast<size_t>(shard)]->load(std::memory_order_relaxed);
}

uint64_t Counter::value() const {
  uint64_t sum = 0;
  for (auto* cell : cells_) sum += cell->load(std::memory_order_relaxed);
  return sum;
}

int64_t Gauge::value(int shard) const {
  assert(shard >= 0 && static_cast<size_t>(shard) < cells_.size());
  return static_cast<int64_t>(cells_[static_cast<size_t>(shard)]->load(std::memory_order_relaxed));
}

int64_t Gauge::value() const {
  uint64_t sum = 0;
  for (auto* cell : cells_) sum += cell->load(std::memory_order_relaxed);
  return static_cast<int64_t>(sum);
}

DynamicCounter::DynamicCounter(int shards, size_t maxKeys)
    : shards_(new PerShard[static_cast<size_t>(shards)]),
      shardCount_(static_cast<size_t>(shards)),
      maxKeys_(maxKeys) {}

void DynamicCounter::inc(int shard, std::string_view key, uint64_t n) {
  assert(shard >= 0 && static_cast<size_t>(shard) < shardCount_);
  PerShard& s = shards_[static_cast<size_t>(shard)];
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.counts.find(key);
  if (it == s.counts.end()) {
    if (s.counts.size() >= maxKeys_) {
      key = kOverflowKey;
      it = s.counts.find(key);
    }
    if (it == s.counts.end()) it = s.counts.emplace(std::string(key), 0).first;
  }
  it->second += n;
}

uint64_t DynamicCounter::value(int shard, std::string_view key) const {
  assert(shard >= 0 && static_cast<size_t>(shard) < shardCount_);
  const PerShard& s = shards_[static_cast<size_t>(shard)];
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.counts.find(key);
  return it == s.counts.end() ? 0 : it->second;
}

uint64_t DynamicCounter::value(std::string_view key) const {
  uint64_t sum = 0;
  for (size_t i = 0; i < shardCount_; ++i) sum += value(static_cast<int>(i), key);
  return sum;
}

std::map<std::string, std::vector<uint64_t>> DynamicCounter::snapshot() const {
  std::map<std::string, std::vector<uint64_t>> all;
  for (size_t i = 0; i < shardCount_; ++i) {
    const PerShard& s = shards_[i];
    std::lock_guard<std::mutex> lock(s.mu);  // one shard at a time: never two locks held
    for (const auto& [key, count] : s.counts) {
      auto& values = all[key];
      values.resize(shardCount_);
      values[i] = count;
    }
  }
  return all;
}

// ---------------------------------------------------------------------------------------------

// Cells for one shard: chunks of kCacheLine-aligned memory that only this shard's series use.
class Registry::Slab {
 public:
  std::atomic<uint64_t>* allocate() {
    if (chunks_.empty() || used_ == kCellsPerChunk) {
      chunks_.push_back(std::make_unique<Chunk>());  // value-initialised: every cell 0
      used_ = 0;
    }
    return &chunks_.back()->cells[used_++];
  }

 private:
  static constexpr size_t kCellsPerChunk = 4 * kCacheLine / sizeof(std::atomic<uint64_t>);
  struct alignas(kCacheLine) Chunk {
    std::atomic<uint64_t> cells[kCellsPerChunk];
  };
  std::vector<std::unique_ptr<Chunk>> chunks_;  // chunks never move: cells stay put
  size_t used_ = 0;
};

struct Registry::Series {
  Labels labels;             // as registered, printed in this order
  std::string key;           // seriesKey(): to find a series registered again
  std::string dynamicLabel;  // dynamic series: the label that takes the keys
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<DynamicCounter> dynamic;
};

struct Registry::Family {
  std::string help;
  Type type;
  ShardLabel shardLabel;
  std::vector<Series> series;  // registration order
};

Registry::Registry(int shards) : shards_(shards) {
  if (shards <= 0) misuse("Registry needs at least one shard, got " + std::to_string(shards));
  for (int i = 0; i < shards; ++i) slabs_.push_back(std::make_unique<Slab>());
}

Registry::~Registry() = default;

Registry::Family& Registry::family(std::string name, std::string_view help, Type type,
                                   ShardLabel shardLabel) {
  if (!isValidMetricName(name)) misuse("invalid metric name \"" + name + "\"");
  auto it = families_.find(name);
  if (it == families_.end()) {
    return families_.emplace(name, Family{std::string(help), type, shardLabel, {}}).first->second;
  }
  Family& f = it->second;
  if (f.type != type) misuse("metric " + name + " registered as both counter and gauge");
  if (f.help != help) misuse("metric " + name + " registered with two HELP texts");
  if (f.shardLabel != shardLabel) misuse("metric " + name + " registered with two ShardLabels");
  return f;
}

std::vector<std::atomic<uint64_t>*> Registry::allocateCells() {
  std::vector<std::atomic<uint64_t>*> cells;
  cells.reserve(slabs_.size());
  for (auto& slab : slabs_) cells.push_back(slab->allocate());
  return cells;
}

Counter& Registry::counter(std::string_view name, std::string_view help, Labels labels,
                           ShardLabel shardLabel) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string full = counterName(name);
  Family& f = family(full, help, Type::kCounter, shardLabel);
  checkLabels(full, labels, {}, shardLabel);
  std::string key = seriesKey(labels, {});
  for (Series& s : f.series) {
    if (s.key == key) return *s.counter;
  }
  Series s{std::move(labels), std::move(key), {}, {}, {}, {}};
  s.counter.reset(new Counter(allocateCells()));
  f.series.push_back(std::move(s));
  return *f.series.back().counter;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, Labels labels,
                       ShardLabel shardLabel) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string full(name);
  Family& f = family(full, help, Type::kGauge, shardLabel);
  checkLabels(full, labels, {}, shardLabel);
  std::string key = seriesKey(labels, {});
  for (Series& s : f.series) {
    if (s.key == key) return *s.gauge;
  }
  Series s{std::move(labels), std::move(key), {}, {}, {}, {}};
  s.gauge.reset(new Gauge(allocateCells()));
  f.series.push_back(std::move(s));
  return *f.series.back().gauge;
}

DynamicCounter& Registry::dynamicCounter(std::string_view name, std::string_view help,
                                         std::string_view labelName, Labels labels,
                                         ShardLabel shardLabel, size_t maxKeys) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string full = counterName(name);
  Family& f = family(full, help, Type::kCounter, shardLabel);
  if (labelName.empty()) misuse("metric " + full + ": a dynamic counter needs a label name");
  checkLabels(full, labels, labelName, shardLabel);
  std::string key = seriesKey(labels, labelName);
  for (Series& s : f.series) {
    if (s.key == key) return *s.dynamic;
  }
  Series s{std::move(labels), std::move(key), std::string(labelName), {}, {}, {}};
  s.dynamic.reset(new DynamicCounter(shards_, maxKeys));
  f.series.push_back(std::move(s));
  return *f.series.back().dynamic;
}

std::string Registry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  std::vector<uint64_t> values(static_cast<size_t>(shards_));
  std::string labels;
  for (const auto& [name, f] : families_) {
    appendFamilyHeader(out, name, f.help, f.type);
    for (const Series& s : f.series) {
      if (s.dynamic) {
        for (const auto& [key, perShard] : s.dynamic->snapshot()) {
          labels.clear();
          appendLabels(labels, s.labels);
          if (!labels.empty()) labels += ',';
          appendLabels(labels, {{s.dynamicLabel, key}});
          appendValues(out, name, labels, f.type, f.shardLabel, perShard);
        }
        continue;
      }
      const auto& cells = s.counter ? s.counter->cells_ : s.gauge->cells_;
      for (size_t i = 0; i < cells.size(); ++i)
        values[i] = cells[i]->load(std::memory_order_relaxed);
      labels.clear();
      appendLabels(labels, s.labels);
      appendValues(out, name, labels, f.type, f.shardLabel, values);
    }
  }
  return out;
}

}  // namespace whorl::metrics
