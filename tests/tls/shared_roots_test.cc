// One client context used by two threads at once, as a multi-shard client (loadgen --shards 2)
// uses it: both verify their first peer against the same trust roots. OpenSSL fills a
// certificate's extension cache lazily, under the certificate's own lock, and verification reads
// it without that lock; TrustRoot::addTo fills the cache before the context is shared. Under
// ThreadSanitizer this test reports the race without that (the read: X509_check_akid on the
// root's key identifier; the write: the cache filling it in on the other thread).
#include <gtest/gtest.h>

#include <barrier>
#include <string>
#include <thread>

#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "framework/tls/session.h"
#include "tests/tls/tls_pipe.h"

namespace whorl::tls {
namespace {

TEST(SharedRootsTest, TwoThreadsVerifyAgainstOneContextAtOnce) {
  auto pc = PrivateCertificate::loadPEMFile(test::certPath("test/localhost.pem"));
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  auto serverOptions = pc->options();
  serverOptions.extraCertChain = {
      *Certificate::loadPEMFile(test::certPath("test/intermediate.pem"))};
  auto server = serverOptions.context();
  ASSERT_TRUE(server.isOk()) << server.status().message();
  // Fresh roots each round (their caches empty): the race is a matter of timing, so give it a
  // few chances.
  for (int round = 0; round < 8; ++round) {
    auto root = trustRootFromPath(test::certPath("test/ca.pem"));
    ASSERT_TRUE(root.isOk()) << root.status().message();
    auto client = optionsForClientTLS("localhost", *root);
    ASSERT_TRUE(client.isOk()) << client.status().message();
    constexpr int kThreads = 2;
    std::barrier start(kThreads);
    bool ok[kThreads] = {};
    std::thread threads[kThreads];
    for (int t = 0; t < kThreads; ++t) {
      threads[t] = std::thread([&, t] {
        auto cs = TlsSession::create(client.context());
        auto ss = TlsSession::create(*server);
        start.arrive_and_wait();
        ok[t] = cs.isOk() && ss.isOk() && test::handshakeInMemory(**cs, **ss).isOk();
      });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(ok[t]) << "round " << round << ", thread " << t;
  }
}

}  // namespace
}  // namespace whorl::tls
