// The io_uring wrapper: set-up fallbacks, submission-queue exhaustion, batched dispatch, when an
// Op is armed, and the provided buffer ring (including running out of buffers).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <string>
#include <vector>

#include "framework/uring/buf_ring.h"
#include "framework/uring/ring.h"

namespace whorl::uring {
namespace {

struct Recorder : Op {
  void complete(int res, uint32_t flags) override { events.push_back({res, flags}); }
  struct Event {
    int res;
    uint32_t flags;
  };
  std::vector<Event> events;
};

TEST(RingTest, CreatesWithTheBestAvailableMode) {
  auto ring = Ring::create({});
  ASSERT_TRUE(ring.isOk()) << ring.status().message();
  // This kernel (and any from 6.1) has SINGLE_ISSUER and DEFER_TASKRUN.
  EXPECT_EQ((*ring)->mode(), "single_issuer+defer_taskrun");
  // And registered ring fds (5.18): every test below drives its ring through the registered index.
  EXPECT_TRUE((*ring)->ringFdRegistered());
}

TEST(RingTest, PlainModeWhenTaskrunFlagsAreNotTried) {
  auto ring = Ring::create({.entries = 8, .tryTaskrunFlags = false});
  ASSERT_TRUE(ring.isOk());
  EXPECT_EQ((*ring)->mode(), "plain");
}

TEST(RingTest, NopRoundTripReachesItsOp) {
  auto ring = Ring::create({.entries = 8});
  ASSERT_TRUE(ring.isOk());
  Recorder a, b;
  io_uring_sqe* sqe = (*ring)->sqe();
  io_uring_prep_nop(sqe);
  Ring::setOp(sqe, &a);
  sqe = (*ring)->sqe();
  io_uring_prep_nop(sqe);
  Ring::setOp(sqe, &b);
  ASSERT_EQ((*ring)->submitAndWait(2, nullptr), 2);
  EXPECT_EQ((*ring)->dispatch(), 2u);
  ASSERT_EQ(a.events.size(), 1u);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(a.events[0].res, 0);
}

TEST(RingTest, CompletionsWithoutAnOpAreDropped) {
  auto ring = Ring::create({.entries = 8});
  ASSERT_TRUE(ring.isOk());
  io_uring_prep_nop((*ring)->sqe());  // user_data stays 0
  ASSERT_EQ((*ring)->submitAndWait(1, nullptr), 1);
  EXPECT_EQ((*ring)->dispatch(), 1u);
}

TEST(RingTest, FullSubmissionQueueSubmitsToMakeRoom) {
  auto ring = Ring::create({.entries = 4});
  ASSERT_TRUE(ring.isOk());
  Recorder r;
  // Far more entries than the queue holds; sqe() must never return null.
  for (int i = 0; i < 1000; ++i) {
    io_uring_sqe* sqe = (*ring)->sqe();
    ASSERT_NE(sqe, nullptr);
    io_uring_prep_nop(sqe);
    Ring::setOp(sqe, &r);
    if (i % 8 == 7) {
      (*ring)->submitAndWait(0, nullptr);
      (*ring)->dispatch();
    }
  }
  while (r.events.size() < 1000) {
    ASSERT_GE((*ring)->submitAndWait(1, nullptr), 0);
    (*ring)->dispatch();
  }
  EXPECT_EQ(r.events.size(), 1000u);
  EXPECT_GE((*ring)->submittedTotal(), 1000u);
}

// Far more completions than the 16-entry completion queue holds, none dispatched while
// submitting: the kernel parks the rest in its overflow list, and sqe() reaps the queue into the
// backlog whenever it finds them there. Every completion must arrive once, in submission order.
TEST(RingTest, OverflowingCompletionsAreReapedAndDispatchedInOrder) {
  RingStats stats;
  auto ring = Ring::create({.entries = 4, .stats = &stats});
  ASSERT_TRUE(ring.isOk());
  struct Numbered : Op {
    void complete(int res, uint32_t) override { seen->push_back(res == 0 ? n : -1); }
    std::vector<int>* seen;
    int n;
  };
  constexpr int kOps = 300;
  std::vector<int> seen;
  std::vector<Numbered> ops(kOps);
  for (int i = 0; i < kOps; ++i) {
    ops[i].seen = &seen;
    ops[i].n = i;
    io_uring_sqe* sqe = (*ring)->sqe();
    io_uring_prep_nop(sqe);
    Ring::setOp(sqe, &ops[i]);
  }
  EXPECT_TRUE(seen.empty()) << "sqe() ran an Op";
  for (int turn = 0; seen.size() < kOps && turn < 10 * kOps; ++turn) {
    ASSERT_GE((*ring)->submitAndWait(1, nullptr), 0);
    (*ring)->dispatch();
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(kOps));
  for (int i = 0; i < kOps; ++i) ASSERT_EQ(seen[i], i);
  EXPECT_GE(stats.cqOverflows.load(), 1u);
  EXPECT_EQ(stats.cqDropped.load(), 0u);
  EXPECT_EQ(stats.submitsRefused.load(), 0u);
  // Each retry submitted a full queue of 4.
  EXPECT_GE(stats.submitRetries.load(), kOps / 4 - 1);
  EXPECT_LE(stats.submitRetries.load(), static_cast<uint64_t>(kOps));
}

// Completion handlers that submit again (as a connection re-arms its receive or sends a reply):
// 64 chains on a 4-entry ring, so nearly every handler's sqe() finds the queue full and reaps
// completions while dispatch() is in the middle of a batch.
TEST(RingTest, OpsSubmittingFromTheirCompletionsOnAFullRing) {
  RingStats stats;
  auto ring = Ring::create({.entries = 4, .stats = &stats});
  ASSERT_TRUE(ring.isOk());
  Ring* r = ring->get();
  constexpr int kChains = 64;
  constexpr int kLinks = 50;
  struct Chain : Op {
    void complete(int res, uint32_t) override {
      if (res != 0) failed = true;
      if (++done < kLinks) submit();
    }
    void submit() {
      io_uring_sqe* sqe = ring->sqe();
      io_uring_prep_nop(sqe);
      Ring::setOp(sqe, this);
    }
    Ring* ring;
    int done = 0;
    bool failed = false;
  };
  std::vector<Chain> chains(kChains);
  for (auto& c : chains) {
    c.ring = r;
    c.submit();
  }
  auto finished = [&] {
    for (const auto& c : chains) {
      if (c.done < kLinks) return false;
    }
    return true;
  };
  for (int turn = 0; !finished() && turn < kChains * kLinks; ++turn) {
    ASSERT_GE(r->submitAndWait(1, nullptr), 0);
    r->dispatch();
  }
  for (const auto& c : chains) {
    EXPECT_EQ(c.done, kLinks);
    EXPECT_FALSE(c.failed);
  }
  EXPECT_GE(stats.submitRetries.load(), 1u);
  EXPECT_EQ(stats.cqDropped.load(), 0u);
  // Nothing is left over: no completion was lost or delivered twice.
  __kernel_timespec ts{0, 1000000};
  r->submitAndWait(1, &ts);
  EXPECT_EQ(r->dispatch(), 0u);
}

// An Op is armed from Ring::setOp until its last completion is delivered, and already disarmed
// inside complete(): an owner that asks its ops whether it may be freed needs no count of its own.
TEST(RingTest, OpIsArmedUntilItsCompletionIsDelivered) {
  auto ring = Ring::create({.entries = 8});
  ASSERT_TRUE(ring.isOk());
  struct Probe : Op {
    void complete(int, uint32_t) override { armedInside.push_back(armed()); }
    std::vector<bool> armedInside;
  } op;
  EXPECT_FALSE(op.armed());
  io_uring_sqe* sqe = (*ring)->sqe();
  io_uring_prep_nop(sqe);
  Ring::setOp(sqe, &op);
  EXPECT_TRUE(op.armed());
  // Submitted again before the first completed (as a cancel sent twice): armed until both end.
  sqe = (*ring)->sqe();
  io_uring_prep_nop(sqe);
  Ring::setOp(sqe, &op);
  ASSERT_EQ((*ring)->submitAndWait(2, nullptr), 2);
  EXPECT_TRUE(op.armed()) << "completed in the kernel, not yet delivered";
  EXPECT_EQ((*ring)->dispatch(), 2u);
  EXPECT_EQ(op.armedInside, (std::vector<bool>{true, false}));
  EXPECT_FALSE(op.armed());
}

// A multishot receive stays armed across its IORING_CQE_F_MORE completions; cancelling it ends
// it with a completion without MORE, which disarms it (and the cancel's own op).
TEST(RingTest, MultishotOpStaysArmedUntilItsFinalCompletion) {
  auto ring = Ring::create({.entries = 8});
  ASSERT_TRUE(ring.isOk());
  auto br = ProvidedBufferRing::create(**ring, {.groupId = 5, .count = 4, .size = 64});
  ASSERT_TRUE(br.isOk()) << br.status().message();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct Probe : Op {
    void complete(int res, uint32_t flags) override {
      events.push_back({res, flags});
      armedInside.push_back(armed());
    }
    std::vector<Recorder::Event> events;
    std::vector<bool> armedInside;
  } recv;
  Recorder cancel;
  io_uring_sqe* sqe = (*ring)->sqe();
  io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = 5;
  Ring::setOp(sqe, &recv);
  ASSERT_EQ((*ring)->submitAndWait(0, nullptr), 1);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(write(sv[1], "x", 1), 1);
    for (int turn = 0; recv.events.size() <= static_cast<size_t>(i) && turn < 100; ++turn) {
      (*ring)->submitAndWait(1, nullptr);
      (*ring)->dispatch();
    }
    ASSERT_EQ(recv.events.size(), static_cast<size_t>(i + 1));
    EXPECT_EQ(recv.events[i].res, 1);
    ASSERT_TRUE(recv.events[i].flags & IORING_CQE_F_MORE);
    (*br)->recycle(ProvidedBufferRing::bufferId(recv.events[i].flags));
    EXPECT_TRUE(recv.armed());
  }
  sqe = (*ring)->sqe();
  io_uring_prep_cancel(sqe, &recv, 0);
  Ring::setOp(sqe, &cancel);
  EXPECT_TRUE(cancel.armed());
  for (int turn = 0; (recv.armed() || cancel.armed()) && turn < 100; ++turn) {
    (*ring)->submitAndWait(1, nullptr);
    (*ring)->dispatch();
  }
  EXPECT_FALSE(recv.armed());
  EXPECT_FALSE(cancel.armed());
  ASSERT_EQ(recv.events.size(), 3u);
  EXPECT_EQ(recv.events[2].res, -ECANCELED);
  EXPECT_FALSE(recv.events[2].flags & IORING_CQE_F_MORE);
  EXPECT_EQ(recv.armedInside, (std::vector<bool>{true, true, false}));
  close(sv[0]);
  close(sv[1]);
}

TEST(RingTest, TimeoutWaitReturnsWithoutCompletions) {
  auto ring = Ring::create({.entries = 4});
  ASSERT_TRUE(ring.isOk());
  __kernel_timespec ts{0, 1000000};
  int rc = (*ring)->submitAndWait(1, &ts);
  EXPECT_TRUE(rc == -ETIME || rc == 0) << rc;
  EXPECT_EQ((*ring)->dispatch(), 0u);
}

// A quiet send that sends everything posts nothing: the wait that submitted it goes on (here
// until its timeout), and dispatch() then delivers the full length to the op itself.
TEST(RingTest, QuietSendThatSendsEverythingIsSettledByDispatch) {
  auto ring = Ring::create({.entries = 8});
  ASSERT_TRUE(ring.isOk());
  ASSERT_TRUE((*ring)->quietSends());
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Recorder op;
  const std::string payload = "a response of some bytes";
  (*ring)->prepSendQuiet(&op, sv[0], payload.data(), static_cast<unsigned>(payload.size()), 0);
  EXPECT_TRUE(op.armed());
  __kernel_timespec ts{.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
  EXPECT_EQ((*ring)->submitAndWait(1, &ts), 1);  // submitted; no completion ended the wait
  EXPECT_EQ(io_uring_cq_ready((*ring)->raw()), 0u);
  EXPECT_TRUE(op.armed());
  EXPECT_EQ((*ring)->dispatch(), 1u);
  EXPECT_FALSE(op.armed());
  ASSERT_EQ(op.events.size(), 1u);
  EXPECT_EQ(op.events[0].res, static_cast<int>(payload.size()));
  char buf[64];
  ASSERT_EQ(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), static_cast<ssize_t>(payload.size()));
  EXPECT_EQ(std::string(buf, payload.size()), payload);
  close(sv[0]);
  close(sv[1]);
}

// A quiet send that does not fit reports what it sent (or -EAGAIN) with a completion of its own,
// during the submit: the stream loses and repeats nothing.
TEST(RingTest, QuietSendThatDoesNotFitReportsWhatItSent) {
  auto ring = Ring::create({.entries = 8});
  ASSERT_TRUE(ring.isOk());
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int small = 4096;
  ASSERT_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  ASSERT_EQ(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  std::string payload(1 << 20, 'x');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  Recorder op;
  (*ring)->prepSendQuiet(&op, sv[0], payload.data(), static_cast<unsigned>(payload.size()), 0);
  ASSERT_EQ((*ring)->submitAndWait(1, nullptr), 1);  // the short send's completion ends the wait
  EXPECT_EQ((*ring)->dispatch(), 1u);
  EXPECT_FALSE(op.armed());
  ASSERT_EQ(op.events.size(), 1u);
  int sent = op.events[0].res;
  ASSERT_TRUE(sent == -EAGAIN || (sent > 0 && sent < static_cast<int>(payload.size()))) << sent;
  if (sent < 0) sent = 0;
  std::string got(payload.size(), '\0');
  ssize_t r = recv(sv[1], got.data(), got.size(), MSG_DONTWAIT);
  ASSERT_EQ(r, sent);
  EXPECT_EQ(got.substr(0, static_cast<size_t>(r)), payload.substr(0, static_cast<size_t>(sent)));
  close(sv[0]);
  close(sv[1]);
}

TEST(BufferRingTest, RejectsCountsThatAreNotPowersOfTwo) {
  auto ring = Ring::create({.entries = 8});
  ASSERT_TRUE(ring.isOk());
  auto br = ProvidedBufferRing::create(**ring, {.groupId = 1, .count = 3, .size = 64});
  EXPECT_FALSE(br.isOk());
}

// Multishot receive into two 8-byte buffers: data beyond them ends the receive with -ENOBUFS;
// after recycling and re-arming, every byte arrives in order.
TEST(BufferRingTest, ExhaustionEndsMultishotAndRearmRecoversEveryByte) {
  auto ring = Ring::create({.entries = 16});
  ASSERT_TRUE(ring.isOk());
  auto br = ProvidedBufferRing::create(**ring, {.groupId = 3, .count = 2, .size = 8});
  ASSERT_TRUE(br.isOk()) << br.status().message();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  const std::string sent = "0123456789abcdefghijklmnopqrstuvwxyz";
  ASSERT_EQ(write(sv[1], sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));

  std::string got;
  int enobufs = 0;
  struct RecvOp : Op {
    void complete(int res, uint32_t flags) override {
      this->res = res;
      this->flags = flags;
      done = true;
    }
    int res = 0;
    uint32_t flags = 0;
    bool done = false;
  } op;
  bool armed = false;
  for (int turns = 0; got.size() < sent.size() && turns < 100; ++turns) {
    if (!armed) {
      io_uring_sqe* sqe = (*ring)->sqe();
      io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 3;
      Ring::setOp(sqe, &op);
      armed = true;
    }
    (*ring)->submitAndWait(1, nullptr);
    // Dispatch one completion at a time so the buffer of each is recycled in order.
    io_uring_cqe* cqe;
    while (io_uring_peek_cqe((*ring)->raw(), &cqe) == 0) {
      int res = cqe->res;
      uint32_t flags = cqe->flags;
      io_uring_cqe_seen((*ring)->raw(), cqe);
      if (!(flags & IORING_CQE_F_MORE)) armed = false;
      if (res > 0) {
        uint16_t id = ProvidedBufferRing::bufferId(flags);
        got.append((*br)->view(id, static_cast<size_t>(res)));
        (*br)->recycle(id);
      } else if (res == -ENOBUFS) {
        ++enobufs;
      }
    }
  }
  EXPECT_EQ(got, sent);
  EXPECT_GT(enobufs, 0) << "two 8-byte buffers cannot hold 36 bytes in one go";
  close(sv[0]);
  close(sv[1]);
}

}  // namespace
}  // namespace whorl::uring
