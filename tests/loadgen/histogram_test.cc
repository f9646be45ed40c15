// LatencyHistogram: bucket boundaries and precision, percentiles of known data, merging.
#include "tools/loadgen/histogram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace whorl::loadgen {
namespace {

TEST(LatencyHistogram, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.percentile(100), 0u);
}

TEST(LatencyHistogram, BucketsCoverEveryValueWithinPrecision) {
  size_t last = 0;
  for (uint64_t v = 0; v < (uint64_t{1} << 22); ++v) {
    size_t i = LatencyHistogram::bucketIndex(v);
    ASSERT_LT(i, LatencyHistogram::kBucketCount);
    ASSERT_LE(LatencyHistogram::bucketLow(i), v) << v;
    ASSERT_GE(LatencyHistogram::bucketHigh(i), v) << v;
    ASSERT_TRUE(i == last || i == last + 1) << "bucket indexes must be contiguous at " << v;
    last = i;
    // Bucket width relative to the value: exact below 256, then under 1/128.
    uint64_t width = LatencyHistogram::bucketHigh(i) - LatencyHistogram::bucketLow(i);
    if (v < 256) {
      ASSERT_EQ(width, 0u) << v;
    } else {
      ASSERT_LT(static_cast<double>(width) / static_cast<double>(v), 1.0 / 128) << v;
    }
  }
  // Spot checks further out, and the top.
  for (int bit = 22; bit < LatencyHistogram::kMaxBits; ++bit) {
    for (uint64_t v :
         {(uint64_t{1} << bit) - 1, uint64_t{1} << bit, (uint64_t{1} << bit) + 12345}) {
      size_t i = LatencyHistogram::bucketIndex(v);
      EXPECT_LE(LatencyHistogram::bucketLow(i), v);
      EXPECT_GE(LatencyHistogram::bucketHigh(i), v);
    }
  }
  EXPECT_EQ(LatencyHistogram::bucketIndex(LatencyHistogram::kMaxValue),
            LatencyHistogram::kBucketCount - 1);
  EXPECT_EQ(LatencyHistogram::bucketHigh(LatencyHistogram::kBucketCount - 1),
            LatencyHistogram::kMaxValue);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
  EXPECT_EQ(h.percentile(0), 1u);
  EXPECT_EQ(h.percentile(1), 1u);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(90), 90u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(99.9), 100u);
  EXPECT_EQ(h.percentile(100), 100u);
}

TEST(LatencyHistogram, PercentilesOfAUniformRange) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.record(v);
  EXPECT_DOUBLE_EQ(h.mean(), 50000.5);
  EXPECT_EQ(h.max(), 100000u);
  // The true value, or at most one bucket (< 1/128) above it: never below.
  for (double p : {10.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
    double exact = p / 100.0 * 100000;
    auto got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(got, exact * (1 + 1.0 / 128)) << "p" << p;
  }
  EXPECT_EQ(h.percentile(100), 100000u);  // capped at the exact maximum
}

TEST(LatencyHistogram, PercentilesOfASkewedDistribution) {
  // 99% fast (100 µs), 0.9% slow (5 ms), 0.1% very slow (250 ms): the tail must show.
  LatencyHistogram h;
  h.recordN(100, 99000);
  h.recordN(5000, 900);
  h.recordN(250000, 100);
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.percentile(50), 100u);
  EXPECT_EQ(h.percentile(99), 100u);
  uint64_t p995 = h.percentile(99.5);
  EXPECT_GE(p995, 5000u);
  EXPECT_LT(p995, 5000u + 5000u / 128 + 1);
  uint64_t p9995 = h.percentile(99.95);
  EXPECT_EQ(p9995, 250000u);  // the top bucket is capped at max
  EXPECT_EQ(h.max(), 250000u);
  EXPECT_EQ(h.min(), 100u);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(5.0, 1.5);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 200000; ++i) {
    auto v = static_cast<uint64_t>(dist(rng));
    (i % 3 == 0 ? a : b).record(v);
    all.record(v);
  }
  LatencyHistogram merged;
  merged.merge(a);
  merged.merge(b);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.mean(), all.mean());
  for (double p : {0.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(merged.percentile(p), all.percentile(p)) << p;
  }
  // Merging an empty histogram changes nothing.
  merged.merge(LatencyHistogram());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.count(), all.count());
}

TEST(LatencyHistogram, ClampsHugeValuesAndResets) {
  LatencyHistogram h;
  h.record(UINT64_MAX);
  EXPECT_EQ(h.max(), LatencyHistogram::kMaxValue);
  EXPECT_EQ(h.percentile(50), LatencyHistogram::kMaxValue);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  h.record(7);
  EXPECT_EQ(h.min(), 7u);
  EXPECT_EQ(h.percentile(50), 7u);
}

}  // namespace
}  // namespace whorl::loadgen
