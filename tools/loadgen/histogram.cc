#include "tools/loadgen/histogram.h"

#include <algorithm>
#include <cmath>

namespace whorl::loadgen {

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

size_t LatencyHistogram::bucketIndex(uint64_t value) {
  if (value > kMaxValue) value = kMaxValue;
  if (value < 2 * kSubBuckets) return static_cast<size_t>(value);
  int msb = 63 - __builtin_clzll(value);  // >= kSubBucketBits + 1
  int shift = msb - kSubBucketBits;       // >= 1
  uint64_t sub = value >> shift;          // in [kSubBuckets, 2 * kSubBuckets)
  return static_cast<size_t>((static_cast<uint64_t>(shift) + 1) * kSubBuckets +
                             (sub - kSubBuckets));
}

uint64_t LatencyHistogram::bucketLow(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  uint64_t shift = index / kSubBuckets - 1;
  uint64_t sub = index % kSubBuckets + kSubBuckets;
  return sub << shift;
}

uint64_t LatencyHistogram::bucketHigh(size_t index) {
  if (index < 2 * kSubBuckets) return index;
  uint64_t shift = index / kSubBuckets - 1;
  return bucketLow(index) + (uint64_t{1} << shift) - 1;
}

void LatencyHistogram::recordN(uint64_t value, uint64_t n) {
  if (n == 0) return;
  if (value > kMaxValue) value = kMaxValue;
  counts_[bucketIndex(value)] += n;
  count_ += n;
  sum_ += static_cast<unsigned __int128>(value) * n;
  if (value < min_) min_ = value;
  if (value > max_) max_ = value;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

double LatencyHistogram::mean() const {
  if (count_ == 0) return 0;
  return static_cast<double>(sum_) / static_cast<double>(count_);
}

uint64_t LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // The rank of the sample wanted, 1-based: the smallest rank covering p% of the samples.
  // (The tolerance keeps 99.9% of 1000 at rank 999 despite rounding in p / 100.)
  double exact = p / 100.0 * static_cast<double>(count_);
  auto rank = static_cast<uint64_t>(std::ceil(exact - 1e-9 * std::max(1.0, exact)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(bucketHigh(i), max_);
  }
  return max_;
}

}  // namespace whorl::loadgen
