// A shard whose ring is far too small for its load: 4 submission entries (16 completions) serving
// 1,000 TLS connections from Python's ssl module that all send at once. The submission queue
// fills on nearly every turn and the completion queue overflows into the kernel's list; the shard
// must reap instead of retrying a refused submit forever, lose no completion, and echo everything.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include "framework/endpoint/tls_endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "tests/subprocess.h"

namespace whorl {
namespace {

using namespace std::chrono_literals;

constexpr int kConnections = 1000;

std::string cert(const std::string& name) {
  return std::string(std::getenv("TEST_SRCDIR")) + "/whorl/certs/" + name;
}

// How the server's connections ended; written on the shard, read by the test.
struct Endings {
  std::mutex mu;
  std::condition_variable cv;
  int handshakes = 0;
  int clean = 0;
  std::vector<std::string> errors;

  int ended() { return clean + static_cast<int>(errors.size()); }
};

class Echo : public api::Protocol {
 public:
  explicit Echo(Endings* e) : e_(e) {}
  void handshakeCompleted() override {
    std::lock_guard<std::mutex> l(e_->mu);
    ++e_->handshakes;
  }
  void dataReceived(std::string_view data) override { transport()->write(data); }
  void connectionLost(const Status& reason) override {
    std::lock_guard<std::mutex> l(e_->mu);
    if (reason.isCleanClose()) {
      ++e_->clean;
    } else {
      e_->errors.push_back(reason.toString());
    }
    e_->cv.notify_all();
  }

 private:
  Endings* e_;
};

// Connects every client first (the handshakes are not the point), then writes on all of them in
// one loop iteration, so the requests reach the server together, then reads every echo back.
const char* kClient = R"PY(
import asyncio, resource, ssl, sys
port, ca, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
ctx = ssl.create_default_context(cafile=ca)

def message(i):
    return (b"%04d:" % i) * 300  # 1,500 bytes, different on every connection

async def connect():
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost",
                                         ssl_handshake_timeout=300)

async def main():
    conns = await asyncio.gather(*(connect() for _ in range(n)))
    print("connected", len(conns), flush=True)
    for i, (r, w) in enumerate(conns):
        w.write(message(i))
    echoes = await asyncio.gather(*(r.readexactly(len(message(i))) for i, (r, w) in enumerate(conns)))
    bad = [i for i, e in enumerate(echoes) if e != message(i)]
    for r, w in conns:
        w.close()
    await asyncio.gather(*(w.wait_closed() for r, w in conns), return_exceptions=True)
    print("echoed", n - len(bad), "mismatched", len(bad), flush=True)
    return 1 if bad else 0

sys.exit(asyncio.run(main()))
)PY";

TEST(RingPressureTest, FourEntryRingServesAThousandTlsConnectionsSendingAtOnce) {
  // The server holds a descriptor per connection too.
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit raised = saved;
  if (raised.rlim_cur < kConnections + 256) raised.rlim_cur = std::min<rlim_t>(raised.rlim_max, kConnections + 256);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &raised), 0);
  ASSERT_GE(raised.rlim_cur, static_cast<rlim_t>(kConnections + 64)) << "the hard limit is too low";

  Endings endings;
  reactor::RuntimeOptions ro;
  ro.shards = 1;
  ro.pinThreads = false;
  ro.ring.entries = 4;
  reactor::Runtime runtime(ro);
  ASSERT_TRUE(runtime.start().isOk());
  auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  auto options = pc->options();
  options.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
  // One Python thread does all 1,000 client handshakes at once; on a busy machine the last ones
  // finish long after the default 10 s. Handshake timeouts are not what this test is about.
  options.handshakeTimeout = 300s;
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  auto port = endpoint::SSL4ServerEndpoint(runtime, 0, std::move(options), tcp)
                  .listen(api::Factory::forProtocol<Echo>(&endings));
  ASSERT_TRUE(port.isOk()) << port.status().message();

  testutil::Subprocess client({"python3", "-c", kClient, std::to_string((*port)->getHost().port()),
                               cert("test/ca.pem"), std::to_string(kConnections)});
  int rc = client.wait(300s);
  EXPECT_EQ(rc, 0) << client.output();
  EXPECT_NE(client.output().find("echoed " + std::to_string(kConnections) + " mismatched 0"),
            std::string::npos)
      << client.output();

  {
    std::unique_lock<std::mutex> l(endings.mu);
    EXPECT_TRUE(endings.cv.wait_for(l, 60s, [&] { return endings.ended() >= kConnections; }))
        << endings.ended() << " of " << kConnections << " connections ended";
    EXPECT_EQ(endings.handshakes, kConnections);
    EXPECT_EQ(endings.clean, kConnections);
    for (const auto& e : endings.errors) ADD_FAILURE() << "connection lost: " << e;
  }

  const uring::RingStats& ring = runtime.shard(0).stats().ring;
  uint64_t retries = ring.submitRetries.load();
  uint64_t refused = ring.submitsRefused.load();
  std::printf("ring: %llu submit retries (%llu refused), %llu overflows, %llu dropped\n",
              static_cast<unsigned long long>(retries), static_cast<unsigned long long>(refused),
              static_cast<unsigned long long>(ring.cqOverflows.load()),
              static_cast<unsigned long long>(ring.cqDropped.load()));
  // The queue was too small for the load, so the slow path ran...
  EXPECT_GT(retries, 0u);
  EXPECT_GT(ring.cqOverflows.load(), 0u);
  EXPECT_EQ(ring.cqDropped.load(), 0u);
  // ...and every retry did work: a connection here needs a handful of submissions (handshake
  // flights, the echo, close_notify, the close), and a successful retry submits four at once. A
  // ring spinning on a refused submit counts retries without end.
  EXPECT_LE(retries, 4u * kConnections);
  EXPECT_LE(refused, retries / 2);

  runtime.stop(0ms);
  runtime.join();
  setrlimit(RLIMIT_NOFILE, &saved);
}

}  // namespace
}  // namespace whorl
