// ring_bench: the cost of an io_uring submit/complete round trip through whorl::uring::Ring, and
// of handing provided receive buffers back to the kernel.
//
//   bazel run -c opt //bench:ring_bench
//   bazel run -c opt //bench:ring_bench -- --benchmark_filter=BM_Nop/batch:1/
//
// BM_Nop: per iteration, `batch` NOPs are taken with Ring::sqe(), tagged with a counting Op,
//   submitted with one submitAndWait(batch, nullptr) and completed with dispatch(). batch:1 is the
//   single round trip (one io_uring_enter per NOP); 32 and 256 show the amortized per-NOP cost
//   (items_per_second); 2048 exceeds the 1024-entry queue, so Ring::sqe() submits to make room.
//   taskrun:1 uses the default set-up (SINGLE_ISSUER|DEFER_TASKRUN when the kernel has it),
//   taskrun:0 forces RingOptions{.tryTaskrunFlags = false}; the label names ring->mode().
// BM_BufRingRecycle: ProvidedBufferRing::view() + recycle() of one buffer per iteration, the
//   user-space half of consuming a received buffer (no kernel involvement).
// BM_BufRingRecv: a full receive through a provided buffer: write 64 bytes into a socketpair,
//   a multishot recv (IOSQE_BUFFER_SELECT) completes with a buffer id, view() + recycle().
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "framework/uring/buf_ring.h"
#include "framework/uring/op.h"
#include "framework/uring/ring.h"

namespace {

using whorl::uring::BufferRingOptions;
using whorl::uring::Op;
using whorl::uring::ProvidedBufferRing;
using whorl::uring::Ring;
using whorl::uring::RingOptions;

class CountingOp final : public Op {
 public:
  void complete(int res, uint32_t flags) override {
    (void)flags;
    if (res < 0) ++errors_;
    ++count_;
  }
  uint64_t count() const { return count_; }
  uint64_t errors() const { return errors_; }

 private:
  uint64_t count_ = 0;
  uint64_t errors_ = 0;
};

std::unique_ptr<Ring> makeRing(benchmark::State& state, bool tryTaskrunFlags) {
  auto ring = Ring::create(RingOptions{.entries = 1024, .tryTaskrunFlags = tryTaskrunFlags});
  if (!ring) {
    state.SkipWithError(ring.status().message().c_str());
    return nullptr;
  }
  return std::move(*ring);
}

void BM_Nop(benchmark::State& state) {
  const auto batch = static_cast<unsigned>(state.range(0));
  auto ring = makeRing(state, state.range(1) != 0);
  if (!ring) return;
  state.SetLabel(ring->mode());
  CountingOp op;
  uint64_t expected = 0;
  for (auto _ : state) {
    for (unsigned i = 0; i < batch; ++i) {
      io_uring_sqe* sqe = ring->sqe();
      io_uring_prep_nop(sqe);
      Ring::setOp(sqe, &op);
    }
    expected += batch;
    int n = ring->submitAndWait(batch, nullptr);
    if (n < 0) {
      state.SkipWithError("submitAndWait failed");
      break;
    }
    ring->dispatch();
    while (op.count() < expected) {  // not expected for NOPs; keeps the loop honest
      ring->submitAndWait(1, nullptr);
      ring->dispatch();
    }
  }
  if (op.errors() != 0) state.SkipWithError("a NOP completed with an error");
  if (ring->submittedTotal() != expected) state.SkipWithError("submittedTotal() mismatch");
  state.SetItemsProcessed(static_cast<int64_t>(op.count()));
}
BENCHMARK(BM_Nop)->ArgsProduct({{1, 32, 256, 2048}, {1, 0}})->ArgNames({"batch", "taskrun"});

void BM_BufRingRecycle(benchmark::State& state) {
  auto ring = makeRing(state, true);
  if (!ring) return;
  const auto count = static_cast<uint32_t>(state.range(0));
  auto br = ProvidedBufferRing::create(*ring, {.groupId = 0, .count = count, .size = 16384});
  if (!br) {
    state.SkipWithError(br.status().message().c_str());
    return;
  }
  state.SetLabel(ring->mode());
  // The kernel never takes these buffers; recycling re-adds each id at its own ring slot, so the
  // ring stays consistent while measuring view() + recycle() alone.
  uint32_t i = 0;
  for (auto _ : state) {
    auto id = static_cast<uint16_t>(i++ & (count - 1));
    (*br)->noteTaken();
    std::string_view v = (*br)->view(id, 64);
    benchmark::DoNotOptimize(v.data());
    (*br)->recycle(id);
  }
  if ((*br)->outstanding() != 0) state.SkipWithError("outstanding() not back to 0");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BufRingRecycle)->Arg(512)->ArgName("count");

class RecvOp final : public Op {
 public:
  void complete(int res, uint32_t flags) override {
    res_ = res;
    flags_ = flags;
    ++count_;
  }
  int res_ = 0;
  uint32_t flags_ = 0;
  uint64_t count_ = 0;
};

void armRecv(Ring& ring, ProvidedBufferRing& br, int fd, RecvOp* op) {
  io_uring_sqe* sqe = ring.sqe();
  io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = br.groupId();
  Ring::setOp(sqe, op);
}

void BM_BufRingRecv(benchmark::State& state) {
  auto ring = makeRing(state, state.range(0) != 0);
  if (!ring) return;
  auto br = ProvidedBufferRing::create(*ring, {.groupId = 7, .count = 64, .size = 4096});
  if (!br) {
    state.SkipWithError(br.status().message().c_str());
    return;
  }
  state.SetLabel(ring->mode());
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  char payload[64];
  std::memset(payload, 'x', sizeof payload);
  RecvOp op;
  armRecv(*ring, **br, fds[0], &op);
  ring->submit();
  uint64_t bytes = 0;
  for (auto _ : state) {
    if (write(fds[1], payload, sizeof payload) != static_cast<ssize_t>(sizeof payload)) {
      state.SkipWithError("write failed");
      break;
    }
    uint64_t want = op.count_ + 1;
    while (op.count_ < want) {
      ring->submitAndWait(1, nullptr);
      ring->dispatch();
    }
    if (op.res_ <= 0 || (op.flags_ & IORING_CQE_F_BUFFER) == 0) {
      state.SkipWithError("recv completed without a buffer");
      break;
    }
    uint16_t id = ProvidedBufferRing::bufferId(op.flags_);
    (*br)->noteTaken();
    std::string_view v = (*br)->view(id, static_cast<size_t>(op.res_));
    benchmark::DoNotOptimize(v.data());
    bytes += v.size();
    (*br)->recycle(id);
    if ((op.flags_ & IORING_CQE_F_MORE) == 0) armRecv(*ring, **br, fds[0], &op);
  }
  close(fds[1]);  // ends the multishot recv (res 0, no F_MORE) before the rings go away
  while ((op.flags_ & IORING_CQE_F_MORE) != 0) {
    ring->submitAndWait(1, nullptr);
    ring->dispatch();
  }
  close(fds[0]);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BufRingRecv)->Arg(1)->Arg(0)->ArgName("taskrun");

}  // namespace
