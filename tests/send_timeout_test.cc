// Loopback tests of TransportOptions::sendTimeout: a peer that stops reading is reset after the
// timeout whether the server is still writing or draining for loseConnection, the reason reaches
// connectionLost once and the descriptor is freed; a slow reader that keeps taking bytes is never
// cut off, nor is a connection whose output drained and then stayed idle. Peers are POSIX sockets.
#include <dirent.h>
#include <unistd.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "framework/endpoint/endpoint.h"
#include "framework/net/tcp_transport.h"
#include "framework/reactor/runtime.h"
#include "tests/pattern_producer.h"
#include "tests/socket_util.h"

namespace whorl {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

reactor::RuntimeOptions oneShard() {
  reactor::RuntimeOptions o;
  o.shards = 1;
  o.pinThreads = false;
  return o;
}

std::unique_ptr<endpoint::ListeningPort> listenLocal(reactor::Runtime& rt,
                                                     std::shared_ptr<api::Factory> f,
                                                     std::chrono::milliseconds sendTimeout) {
  endpoint::TcpServerOptions so;
  so.interface = "127.0.0.1";
  so.transport.sendTimeout = sendTimeout;
  auto port = endpoint::TCP4ServerEndpoint(rt, 0, so).listen(std::move(f));
  EXPECT_TRUE(port.isOk()) << port.status().message();
  return port.isOk() ? std::move(port.value()) : nullptr;
}

// What a Writer reports to the test thread.
struct Shared {
  size_t total = 0;         // bytes to write
  bool ignorePause = false;  // write everything at once (then loseConnection), flow control or not
  bool kernelSendBuffer = false;  // keep the kernel's own (autotuned) send buffer size
  std::atomic<size_t> written{0};
  std::atomic<bool> loseCalled{false};
  // Sampled this long after loseConnection(): bytes still waiting in the transport (proves the
  // server's sends were held back by the reader for longer than that).
  std::chrono::milliseconds sampleAfter{0};
  std::atomic<size_t> bufferedLater{0};
  std::atomic<int> lostCalls{0};
  std::promise<Status> lost;
};

// Writes s->total bytes of the test pattern, then loseConnection().
class Writer : public testutil::PatternProducer {
 public:
  explicit Writer(Shared* s) : PatternProducer(s->total, s->ignorePause), s_(s) {}
  void connectionMade() override {
    // A small kernel send buffer (the kernel doubles it), so that the peer's pace, not the
    // kernel's memory, governs how fast the server's sends complete.
    auto* tcp = dynamic_cast<net::TcpTransport*>(transport());
    if (tcp != nullptr && !s_->kernelSendBuffer) {
      int size = 16384;
      setsockopt(tcp->fd(), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    PatternProducer::connectionMade();
  }
  void connectionLost(const Status& reason) override {
    sample_.cancel();
    if (s_->lostCalls.fetch_add(1) == 0) s_->lost.set_value(reason);
  }

 private:
  void wrote(size_t sent) override { s_->written.store(sent); }
  void finished() override {
    s_->loseCalled.store(true);
    if (s_->sampleAfter.count() > 0) {
      sample_ = transport()->reactor().callLater(
          s_->sampleAfter, [this] { s_->bufferedLater.store(transport()->bufferedBytes()); });
    }
  }
  Shared* s_;
  api::DelayedCall sample_;
};

class Echo : public api::Protocol {
 public:
  void dataReceived(std::string_view data) override { transport()->write(data); }
};

// Descriptors other than pipes: under ASan+UBSan the sanitizer runtime opens a pipe for a moment
// (its memory-accessibility probe), so a count that includes pipes can be one or two off either
// way. Nothing in these tests splices, so the server owns no pipes whose leak this would hide.
size_t openDescriptors() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[64] = {};
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    if (readlink(link.c_str(), target, sizeof(target) - 1) > 0 &&
        std::string_view(target).starts_with("pipe:")) {
      continue;
    }
    ++n;
  }
  closedir(d);
  return n;
}

// Waits (generously: the machine may be loaded) until `done` holds.
template <typename F>
bool waitFor(F done, std::chrono::seconds limit = 30s) {
  auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Reads what the kernel buffered, then expects the reset the server sent.
void expectResetAfterBufferedBytes(int fd) {
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 20000), 0) << "no reset from the server";
    ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r > 0) continue;
    EXPECT_EQ(r, -1) << "a FIN, not a reset";
    EXPECT_EQ(errno, ECONNRESET);
    return;
  }
}

void expectSendTimeout(const Status& reason, const char* timeoutText) {
  EXPECT_EQ(reason.code(), Status::Code::kTimeout) << reason.toString();
  EXPECT_NE(reason.message().find("send timeout"), std::string::npos) << reason.message();
  EXPECT_NE(reason.message().find(timeoutText), std::string::npos) << reason.message();
  EXPECT_NE(reason.message().find("stopped reading"), std::string::npos) << reason.message();
}

TEST(SendTimeoutTest, DefaultIsNginxsSixtySecondsAndZeroMeansNever) {
  EXPECT_EQ(net::TransportOptions{}.sendTimeout, 60000ms);
}

TEST(SendTimeoutTest, PeerThatStopsReadingIsResetWhileTheServerWrites) {
  reactor::Runtime rt(oneShard());
  ASSERT_TRUE(rt.start().isOk());
  Shared shared;
  shared.total = size_t{1} << 40;  // never finishes: the server is writing when it times out
  auto port = listenLocal(rt, api::Factory::forProtocol<Writer>(&shared), 300ms);
  ASSERT_TRUE(port);
  size_t fdsBefore = openDescriptors();
  auto start = Clock::now();
  int fd = testutil::connectTo(port->getHost().port(), 4096);
  ASSERT_GE(fd, 0);
  auto lost = shared.lost.get_future();
  ASSERT_EQ(lost.wait_for(30s), std::future_status::ready);
  auto elapsed = Clock::now() - start;
  expectSendTimeout(lost.get(), "0.3 s");
  EXPECT_GE(elapsed, 300ms);
  EXPECT_FALSE(shared.loseCalled.load());
  EXPECT_GT(shared.written.load(), 0u);
  expectResetAfterBufferedBytes(fd);
  close(fd);
  EXPECT_TRUE(waitFor([&] { return rt.shard(0).stats().open.load() == 0; }));
  EXPECT_TRUE(waitFor([&] { return openDescriptors() == fdsBefore; }))
      << openDescriptors() << " descriptors open, " << fdsBefore << " before";
  EXPECT_EQ(shared.lostCalls.load(), 1);
  rt.stop(0ms);
  rt.join();
  EXPECT_EQ(shared.lostCalls.load(), 1);
}

TEST(SendTimeoutTest, PeerThatStopsReadingIsResetWhileLoseConnectionDrains) {
  reactor::Runtime rt(oneShard());
  ASSERT_TRUE(rt.start().isOk());
  Shared shared;
  shared.total = 16 << 20;  // far more than the socket buffers hold, all written at once
  shared.ignorePause = true;
  auto port = listenLocal(rt, api::Factory::forProtocol<Writer>(&shared), 300ms);
  ASSERT_TRUE(port);
  int fd = testutil::connectTo(port->getHost().port(), 4096);
  ASSERT_GE(fd, 0);
  auto lost = shared.lost.get_future();
  ASSERT_EQ(lost.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(shared.loseCalled.load()) << "loseConnection() was not waiting to drain";
  expectSendTimeout(lost.get(), "0.3 s");
  expectResetAfterBufferedBytes(fd);
  close(fd);
  EXPECT_TRUE(waitFor([&] { return rt.shard(0).stats().open.load() == 0; }));
  rt.stop(0ms);
  rt.join();
  EXPECT_EQ(shared.lostCalls.load(), 1);
}

TEST(SendTimeoutTest, SlowReaderThatKeepsReadingIsNeverCutOff) {
  reactor::Runtime rt(oneShard());
  ASSERT_TRUE(rt.start().isOk());
  Shared shared;
  shared.total = 1 << 20;
  shared.ignorePause = true;  // loseConnection right away: the whole transfer is a drain
  shared.sampleAfter = 750ms;
  auto port = listenLocal(rt, api::Factory::forProtocol<Writer>(&shared), 500ms);
  ASSERT_TRUE(port);
  int fd = testutil::connectTo(port->getHost().port(), 16384);
  ASSERT_GE(fd, 0);
  // At most 16 KiB every 50 ms: the transfer lasts several send timeouts, and the server's
  // sends wait on the reader throughout, but the kernel takes bytes at every read, ten times per
  // timeout.
  auto start = Clock::now();
  std::string got;
  char buf[16384];
  bool ok = true;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20000) <= 0) break;
    ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r <= 0) break;
    ok = ok && testutil::isPattern(buf, static_cast<size_t>(r), got.size());
    got.append(buf, static_cast<size_t>(r));
    std::this_thread::sleep_for(50ms);  // the pace of a slow reader, not synchronisation
  }
  auto elapsed = Clock::now() - start;
  EXPECT_TRUE(ok);
  EXPECT_EQ(got.size(), shared.total);
  auto lost = shared.lost.get_future();
  ASSERT_EQ(lost.wait_for(30s), std::future_status::ready);
  Status reason = lost.get();
  EXPECT_TRUE(reason.isCleanClose()) << reason.toString();
  // The test means something only if the reader held the server's sends back for longer than a
  // timeout: output was still waiting 1.5 timeouts after loseConnection, and the whole took more.
  EXPECT_GT(shared.bufferedLater.load(), 0u);
  EXPECT_GT(elapsed, 1500ms);
  close(fd);
  rt.stop(0ms);
  rt.join();
}

TEST(SendTimeoutTest, SlowReaderOfABigKernelBufferIsNeverCutOff) {
  // The kernel's send buffer grows to megabytes and reports the socket writable only once a
  // third of it is free: reading steadily but slowly keeps the server's send waiting for longer
  // than the timeout. The kernel's queue shrinking is progress too.
  reactor::Runtime rt(oneShard());
  ASSERT_TRUE(rt.start().isOk());
  Shared shared;
  shared.total = 32 << 20;
  shared.ignorePause = true;
  shared.kernelSendBuffer = true;
  auto port = listenLocal(rt, api::Factory::forProtocol<Writer>(&shared), 1500ms);
  ASSERT_TRUE(port);
  int fd = testutil::connectTo(port->getHost().port(), 65536);
  ASSERT_GE(fd, 0);
  std::string got;
  std::vector<char> buf(1 << 20);
  bool ok = true;
  auto consume = [&](size_t want) {
    ssize_t r = recv(fd, buf.data(), want, 0);
    if (r > 0) {
      ok = ok && testutil::isPattern(buf.data(), static_cast<size_t>(r), got.size());
      got.append(buf.data(), static_cast<size_t>(r));
    }
    return r;
  };
  // 4 s of 8 KiB every 20 ms (the kernel frees a third of its megabytes only every few
  // seconds at that pace), then the rest as fast as it comes. The timeout is long enough for a
  // loaded machine to leave this thread unscheduled for a while without it counting as a stall.
  auto start = Clock::now();
  while (Clock::now() - start < 4000ms) {
    pollfd p{fd, POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 20000), 0);
    ASSERT_GT(consume(8192), 0) << "closed after " << got.size() << " bytes";
    std::this_thread::sleep_for(20ms);  // the pace of a slow reader, not synchronisation
  }
  EXPECT_LT(got.size(), shared.total / 2) << "the slow phase read most of it: test too weak";
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20000) <= 0 || consume(buf.size()) <= 0) break;
  }
  EXPECT_TRUE(ok);
  EXPECT_EQ(got.size(), shared.total);
  auto lost = shared.lost.get_future();
  ASSERT_EQ(lost.wait_for(30s), std::future_status::ready);
  Status reason = lost.get();
  EXPECT_TRUE(reason.isCleanClose()) << reason.toString();
  close(fd);
  rt.stop(0ms);
  rt.join();
}

TEST(SendTimeoutTest, IdleConnectionWhoseOutputDrainedStaysOpen) {
  reactor::Runtime rt(oneShard());
  ASSERT_TRUE(rt.start().isOk());
  auto port = listenLocal(rt, api::Factory::forProtocol<Echo>(), 200ms);
  ASSERT_TRUE(port);
  int fd = testutil::connectTo(port->getHost().port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(testutil::sendAll(fd, "ping"));
  ASSERT_EQ(testutil::recvExactly(fd, 4), "ping");
  // Five timeouts with nothing to send: the timer lapses and nothing is closed.
  pollfd p{fd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 1000), 0) << "the server closed an idle connection";
  ASSERT_TRUE(testutil::sendAll(fd, "pong"));
  EXPECT_EQ(testutil::recvExactly(fd, 4), "pong");
  close(fd);
  rt.stop(0ms);
  rt.join();
}

}  // namespace
}  // namespace whorl
