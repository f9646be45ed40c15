// buffer_bench: whorl::ByteBuffer append/consume patterns from the transport's write path.
//
//   bazel run -c opt //bench:buffer_bench
//   bazel run -c opt //bench:buffer_bench -- --benchmark_filter=BM_PartialConsume
//
// bytes_per_second counts appended bytes; allocs/iter counts heap allocations per iteration (see
// alloc_counter.h) and should be ~0 wherever the buffer is in steady state.
// BM_SmallAppendConsumeAll: `appends` x 64 B appends, then consume(size()) (a burst of small
//   writes fully sent). Steady state: the buffer empties, so it never reallocates.
// BM_BigAppendConsumeAll:   one 64 KiB append, then consume everything.
// BM_GrowFromEmpty:         a fresh buffer takes 1 MiB in 64 KiB appends (growth + copies).
// BM_PartialConsume:        a 4 KiB append, then the kernel "accepts" 4 KiB while `residual`
//   bytes stay queued, so the buffer never empties and begin_ creeps forward (compaction path).
//   residual:20000 leaves the 32 KiB buffer less than half consumed when it fills, which takes
//   grow()'s reallocate path (a same-size allocation + copy every 3 iterations) instead of a
//   memmove: allocs/iter ~0.33 there, ~0 for the others.
// BM_PartialSendPieces:     16 KiB appended as 64 B writes, drained in sends of `send` bytes.
// BM_SwapPendingSending:    the transport's double buffer: writes go to `pending`; when the
//   previous send finishes, pending.swap(sending), and `sending` is consumed by the send.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench/alloc_counter.h"
#include "framework/base/buffer.h"

namespace {

using whorl::ByteBuffer;

void finish(benchmark::State& state, uint64_t allocsBefore, size_t bytesPerIteration) {
  whorl::bench::reportAllocations(state, allocsBefore);
  state.SetBytesProcessed(static_cast<int64_t>(bytesPerIteration * state.iterations()));
}

void BM_SmallAppendConsumeAll(benchmark::State& state) {
  const auto appends = static_cast<size_t>(state.range(0));
  const std::string chunk(64, 'x');
  ByteBuffer buf;
  uint64_t before = whorl::bench::allocationCount();
  for (auto _ : state) {
    for (size_t i = 0; i < appends; ++i) buf.append(chunk);
    benchmark::DoNotOptimize(buf.data());
    buf.consume(buf.size());
  }
  finish(state, before, appends * chunk.size());
}
BENCHMARK(BM_SmallAppendConsumeAll)->Arg(1)->Arg(16)->Arg(256)->ArgName("appends");

void BM_BigAppendConsumeAll(benchmark::State& state) {
  const std::string chunk(64 * 1024, 'x');
  ByteBuffer buf;
  uint64_t before = whorl::bench::allocationCount();
  for (auto _ : state) {
    buf.append(chunk);
    benchmark::DoNotOptimize(buf.data());
    buf.consume(buf.size());
  }
  finish(state, before, chunk.size());
}
BENCHMARK(BM_BigAppendConsumeAll);

void BM_GrowFromEmpty(benchmark::State& state) {
  const std::string chunk(64 * 1024, 'x');
  for (auto _ : state) {
    ByteBuffer buf;
    for (int i = 0; i < 16; ++i) buf.append(chunk);
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(16 * chunk.size() * state.iterations()));
}
BENCHMARK(BM_GrowFromEmpty);

void BM_PartialConsume(benchmark::State& state) {
  const auto residual = static_cast<size_t>(state.range(0));
  const std::string chunk(4096, 'x');
  ByteBuffer buf;
  buf.append(std::string(residual, 'r'));
  uint64_t before = whorl::bench::allocationCount();
  for (auto _ : state) {
    buf.append(chunk);
    benchmark::DoNotOptimize(buf.data());
    buf.consume(chunk.size());  // a partial send: `residual` bytes stay queued
  }
  finish(state, before, chunk.size());
  if (buf.size() != residual) state.SkipWithError("residual changed");
}
BENCHMARK(BM_PartialConsume)->Arg(100)->Arg(3000)->Arg(16384)->Arg(20000)->ArgName("residual");

void BM_PartialSendPieces(benchmark::State& state) {
  const auto send = static_cast<size_t>(state.range(0));
  const std::string chunk(64, 'x');
  ByteBuffer buf;
  uint64_t before = whorl::bench::allocationCount();
  for (auto _ : state) {
    for (int i = 0; i < 256; ++i) buf.append(chunk);
    while (!buf.empty()) {
      benchmark::DoNotOptimize(buf.data());
      buf.consume(send);
    }
  }
  finish(state, before, 256 * chunk.size());
}
BENCHMARK(BM_PartialSendPieces)->Arg(1448)->Arg(7000)->ArgName("send");

void BM_SwapPendingSending(benchmark::State& state) {
  const auto writes = static_cast<size_t>(state.range(0));
  const std::string chunk(64, 'x');
  ByteBuffer pending;
  ByteBuffer sending;
  uint64_t before = whorl::bench::allocationCount();
  for (auto _ : state) {
    // Writes during a loop turn land in pending.
    for (size_t i = 0; i < writes; ++i) pending.append(chunk);
    // The previous send completed: hand pending to the sender, which sends it in two parts.
    pending.swap(sending);
    benchmark::DoNotOptimize(sending.data());
    sending.consume(sending.size() / 2);
    sending.consume(sending.size());
  }
  finish(state, before, writes * chunk.size());
}
BENCHMARK(BM_SwapPendingSending)->Arg(1)->Arg(64)->ArgName("writes");

}  // namespace
