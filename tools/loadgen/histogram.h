// LatencyHistogram: an HDR-style log-bucketed histogram of latencies in microseconds.
//
//   LatencyHistogram h;            // one per shard: no locks, no allocation after construction
//   h.record(latencyMicros);       // O(1): a count-leading-zeros and an increment
//   total.merge(h);                // at the end of the run
//   total.percentile(99.9);        // the value at or below which 99.9% of the samples lie
//
// Values below 256 have their own bucket (exact). Above that each power of two is split into 128
// buckets, so a reported value is at most 1/128 (0.8%) above the true one. Percentiles report the
// highest value of the bucket holding the sample (HdrHistogram's highestEquivalentValue), capped
// at the exact maximum; min, max and mean are exact. Values above kMaxValue (about 12 days) are
// clamped. The histogram owns its fixed bucket array (about 35 KB).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace whorl::loadgen {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // 128
  static constexpr int kMaxBits = 40;
  static constexpr uint64_t kMaxValue = (uint64_t{1} << kMaxBits) - 1;
  static constexpr size_t kBucketCount = (kMaxBits - kSubBucketBits + 1) * kSubBuckets;

  LatencyHistogram();

  void record(uint64_t value) { recordN(value, 1); }
  void recordN(uint64_t value, uint64_t n);
  void merge(const LatencyHistogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const;
  // p in [0, 100]; 0 when empty.
  uint64_t percentile(double p) const;

  // The bucket a value falls in, and the range of values a bucket stands for.
  static size_t bucketIndex(uint64_t value);
  static uint64_t bucketLow(size_t index);
  static uint64_t bucketHigh(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  // Sum of values for the mean; 128 bits never overflow (2^40 µs * 2^64 samples).
  unsigned __int128 sum_ = 0;
};

}  // namespace whorl::loadgen
