// line_receiver_bench: whorl::api::LineReceiver splitting received bytes into lines.
//
//   bazel run -c opt //bench:line_receiver_bench
//   bazel run -c opt //bench:line_receiver_bench -- --benchmark_filter=BM_ByteAtATime
//
// Each iteration feeds a prepared input (CRLF-terminated lines) through dataReceived() in chunks,
// on a protocol attached to an in-file fake Transport/Reactor (writes are discarded); lineReceived
// only counts. bytes_per_second is parsing throughput; items_per_second is lines; allocs/iter
// counts heap allocations per fed input (see alloc_counter.h).
// BM_ShortLinesAligned: 40-byte lines, chunks of <= 16 KiB cut at line ends (the no-copy path).
// BM_ShortLinesSplit:   the same lines in exact 16 KiB (and 1500 B) chunks: a line straddles
//                       every chunk boundary, so the partial-line buffering path runs per chunk.
// BM_ByteAtATime:       a 4 KiB input fed one byte per dataReceived(), for 40 B, 1 KiB and 4 KiB
//                       lines (a partial line is re-copied and re-scanned per call, so the cost
//                       per byte grows with the line length).
// BM_LongLines:         8 KiB lines in 16 KiB chunks, and in 1500 B chunks (TCP-segment sized).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bench/alloc_counter.h"
#include "framework/api/line_receiver.h"
#include "framework/api/reactor.h"
#include "framework/api/transport.h"
#include "framework/base/address.h"
#include "framework/base/log.h"

namespace {

using whorl::api::DelayedCall;
using whorl::api::LineReceiver;
using whorl::api::Reactor;
using whorl::api::Transport;

class FakeReactor final : public Reactor {
 public:
  DelayedCall callLater(Clock::duration, Callback) override { return {}; }
  void callSoon(Callback) override {}
  void stop() override {}
  Clock::time_point now() const override { return Clock::now(); }

 protected:
  void cancelCall(uint64_t) override {}
  bool callActive(uint64_t) const override { return false; }
};

class FakeTransport final : public Transport {
 public:
  void write(std::string_view data) override { written_ += data.size(); }
  void loseConnection() override { disconnecting_ = true; }
  void abortConnection() override { disconnecting_ = true; }
  whorl::Address getPeer() const override { return whorl::Address::loopbackIPv4(4242); }
  whorl::Address getHost() const override { return whorl::Address::loopbackIPv4(4243); }
  void pauseProducing() override {}
  void resumeProducing() override {}
  size_t bufferedBytes() const override { return 0; }
  bool disconnecting() const override { return disconnecting_; }
  Reactor& reactor() override { return reactor_; }

 private:
  FakeReactor reactor_;
  size_t written_ = 0;
  bool disconnecting_ = false;
};

class CountingLines final : public LineReceiver {
 public:
  void lineReceived(std::string_view line) override {
    ++lines_;
    bytes_ += line.size();
  }
  uint64_t lines_ = 0;
  uint64_t bytes_ = 0;
};

// `count` lines of `lineLength` bytes each (not counting the CRLF).
std::string makeLines(size_t lineLength, size_t count) {
  std::string out;
  out.reserve((lineLength + 2) * count);
  for (size_t i = 0; i < count; ++i) {
    for (size_t j = 0; j < lineLength; ++j) out.push_back(static_cast<char>('a' + (i + j) % 26));
    out.append("\r\n");
  }
  return out;
}

// Cuts `input` into chunks of exactly `chunk` bytes (the last may be shorter).
std::vector<std::string_view> fixedChunks(std::string_view input, size_t chunk) {
  std::vector<std::string_view> out;
  for (size_t pos = 0; pos < input.size(); pos += chunk) out.push_back(input.substr(pos, chunk));
  return out;
}

// Runs the benchmark loop: each iteration feeds every chunk to a fresh-state receiver (one
// connection kept for the whole run, as on a long-lived connection).
void feedLoop(benchmark::State& state, std::string_view input,
              const std::vector<std::string_view>& chunks, size_t expectLines) {
  whorl::log::setLevel(whorl::log::Level::kError);
  FakeTransport transport;
  CountingLines proto;
  proto.setMaxLength(64 * 1024);
  proto.makeConnection(&transport);
  uint64_t allocsBefore = whorl::bench::allocationCount();
  for (auto _ : state) {
    for (std::string_view c : chunks) proto.dataReceived(c);
  }
  whorl::bench::reportAllocations(state, allocsBefore);
  if (proto.lines_ != expectLines * state.iterations() || transport.disconnecting()) {
    state.SkipWithError("wrong number of lines delivered");
  }
  state.SetBytesProcessed(static_cast<int64_t>(input.size() * state.iterations()));
  state.SetItemsProcessed(static_cast<int64_t>(proto.lines_));
}

constexpr size_t kShortLine = 38;  // 40 bytes with CRLF
constexpr size_t kChunk = 16 * 1024;

void BM_ShortLinesAligned(benchmark::State& state) {
  const size_t linesPerChunk = kChunk / (kShortLine + 2);
  const size_t nLines = linesPerChunk * 64;  // ~1 MiB
  std::string input = makeLines(kShortLine, nLines);
  auto chunks = fixedChunks(input, linesPerChunk * (kShortLine + 2));
  feedLoop(state, input, chunks, nLines);
}
BENCHMARK(BM_ShortLinesAligned);

void BM_ShortLinesSplit(benchmark::State& state) {
  const size_t nLines = 1024 * 1024 / (kShortLine + 2);
  std::string input = makeLines(kShortLine, nLines);
  auto chunks = fixedChunks(input, static_cast<size_t>(state.range(0)));
  feedLoop(state, input, chunks, nLines);
}
BENCHMARK(BM_ShortLinesSplit)->Arg(16384)->Arg(1500)->ArgName("chunk");

void BM_ByteAtATime(benchmark::State& state) {
  const auto lineLength = static_cast<size_t>(state.range(0));
  const size_t nLines = 4096 / (lineLength + 2);
  std::string input = makeLines(lineLength, nLines);
  auto chunks = fixedChunks(input, 1);
  feedLoop(state, input, chunks, nLines);
}
BENCHMARK(BM_ByteAtATime)->Arg(38)->Arg(1022)->Arg(4094)->ArgName("line");

void BM_LongLines(benchmark::State& state) {
  const size_t nLines = 128;  // 1 MiB
  std::string input = makeLines(8 * 1024, nLines);
  auto chunks = fixedChunks(input, static_cast<size_t>(state.range(0)));
  feedLoop(state, input, chunks, nLines);
}
BENCHMARK(BM_LongLines)->Arg(16384)->Arg(1500)->ArgName("chunk");

}  // namespace
