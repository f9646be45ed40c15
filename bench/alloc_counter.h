// Allocation counting for benchmarks: a replacement global operator new that counts calls.
//
//   uint64_t before = whorl::bench::allocationCount();
//   for (auto _ : state) work();
//   whorl::bench::reportAllocations(state, before);   // adds an "allocs/iter" counter
//
// Linking //bench:alloc_counter replaces operator new/delete for the whole binary (malloc/free
// underneath). The count is per thread, so benchmark-library threads do not disturb it.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace whorl::bench {

// operator new / new[] calls made by the calling thread so far.
uint64_t allocationCount();

inline void reportAllocations(benchmark::State& state, uint64_t before) {
  state.counters["allocs/iter"] = benchmark::Counter(
      static_cast<double>(allocationCount() - before), benchmark::Counter::kAvgIterations);
}

}  // namespace whorl::bench
