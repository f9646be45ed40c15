// TLS 1.3 KeyUpdate under kernel TLS. From Linux 6.14 the kernel takes a new key: after the
// peer's KeyUpdate record its reads fail with EKEYEXPIRED until a new TLS_RX is set, and a second
// TLS_TX installs our next key after our own KeyUpdate. Before 6.14 (Debian's 6.1) a second key is
// refused (EBUSY), so a peer's KeyUpdate must end the connection with a clear reason. The peer
// here is a raw TlsSession client (OpenSSL in userspace) calling SSL_key_update.
#include "tests/ktls/ktls_support.h"

namespace whorl {
namespace {

using namespace ktlstest;

class KtlsKeyUpdate : public KtlsBase, public ::testing::WithParamInterface<Case> {};

// Rounds of: [KeyUpdate] + data, echoed back. Requested updates make the server send its own
// KeyUpdate and change its sending key; the client only decrypts the echo if both happened in
// order. Round 3 sends a block before the update and one after it without reading in between,
// so the server has an old-key echo in flight when it must send its KeyUpdate.
TEST_P(KtlsKeyUpdate, PeerKeyUpdatesAreFollowedOrEndTheConnectionClearly) {
  SKIP_WITHOUT_KTLS();
  const Case& c = GetParam();
  auto before = tlsStat();
  uint16_t port = listen(serverOptions(c, tls::KtlsMode::kRequire));
  RawClient client(port, clientOptions(c, tls::KtlsMode::kOff));
  ASSERT_TRUE(client.handshake());
  ASSERT_TRUE(client.send("before any update"));
  ASSERT_EQ(client.receive(17), "before any update");
  ASSERT_EQ(log_.firstMode(), "kernel TX+RX");
  SSL* ssl = client.session().ssl();

  if (!kernelCanRekey()) {
    ASSERT_EQ(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    ASSERT_TRUE(client.send("after update"));
    Status s = log_.waitLoss();
    EXPECT_EQ(s.code(), Status::Code::kTls) << s.toString();
    EXPECT_NE(s.message().find("KeyUpdate"), std::string::npos) << s.toString();
    EXPECT_NE(s.message().find("6.14"), std::string::npos) << s.toString();
    EXPECT_NE(s.message().find("TLS_RX"), std::string::npos)
        << "names the refused call: " << s.toString();
    // The client is told why (an unexpected_message alert under the old key), then EOF.
    std::string rest = client.receive(1);
    EXPECT_EQ(rest, "");
    auto after = tlsStat();
    EXPECT_EQ(after["TlsDecryptError"], before["TlsDecryptError"])
        << "no record was decrypted with a stale key";
    return;
  }

  const int kinds[] = {SSL_KEY_UPDATE_REQUESTED, SSL_KEY_UPDATE_NOT_REQUESTED,
                       SSL_KEY_UPDATE_REQUESTED};
  int requested = 0, updates = 0;
  for (int round = 0; round < 3; ++round) {
    std::string block = testutil::randomBytes(64 * 1024, static_cast<uint32_t>(100 + round));
    if (round == 2) {
      ASSERT_TRUE(client.send(block));  // an echo in flight across the update
    }
    ASSERT_EQ(SSL_key_update(ssl, kinds[round]), 1);
    ++updates;
    if (kinds[round] == SSL_KEY_UPDATE_REQUESTED) ++requested;
    std::string next = testutil::randomBytes(64 * 1024, static_cast<uint32_t>(200 + round));
    ASSERT_TRUE(client.send(next));  // the KeyUpdate goes out with it
    std::string expected = round == 2 ? block + next : next;
    std::string got = client.receive(expected.size());
    ASSERT_EQ(got.size(), expected.size())
        << "round " << round << ": " << client.session().failure().toString();
    ASSERT_TRUE(got == expected) << "round " << round;
  }
  // Many records under the newest keys, then an orderly close from the client.
  std::string big = testutil::randomBytes(1 << 20, 7);
  for (size_t off = 0; off < big.size(); off += 64 * 1024) {
    std::string_view chunk = std::string_view(big).substr(off, 64 * 1024);
    ASSERT_TRUE(client.send(chunk));
    ASSERT_EQ(client.receive(chunk.size()), chunk) << "at " << off;
  }
  auto during = tlsStat();
  EXPECT_EQ(during["TlsRxRekeyOk"] - before["TlsRxRekeyOk"], updates)
      << "the kernel took every new RX key";
  EXPECT_EQ(during["TlsTxRekeyOk"] - before["TlsTxRekeyOk"], requested)
      << "and our new TX key per request";
  EXPECT_EQ(during["TlsRxRekeyReceived"] - before["TlsRxRekeyReceived"], updates);
  EXPECT_EQ(during["TlsRxRekeyError"], before["TlsRxRekeyError"]);
  EXPECT_EQ(during["TlsTxRekeyError"], before["TlsTxRekeyError"]);
  EXPECT_EQ(during["TlsDecryptError"], before["TlsDecryptError"]);
  EXPECT_EQ(during["TlsCurrTxSw"] - before["TlsCurrTxSw"], 1) << "still in the kernel";
  EXPECT_EQ(during["TlsCurrRxSw"] - before["TlsCurrRxSw"], 1);
  client.session().shutdown();
  client.flush();
  Status s = log_.waitLoss();
  EXPECT_TRUE(s.isCleanClose()) << s.toString();
}

const Case kTls13[] = {kCases[0], kCases[1], kCases[2]};  // SHA-256, SHA-384, ChaCha20
INSTANTIATE_TEST_SUITE_P(Ciphers, KtlsKeyUpdate, ::testing::ValuesIn(kTls13), caseName);

}  // namespace
}  // namespace whorl
