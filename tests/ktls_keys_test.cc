// kTLS key material, checked without a kernel: the keys, nonces and sequence numbers derived for
// the kernel must decrypt the very next record OpenSSL writes, for TLS 1.2 and 1.3 and every
// offloadable cipher, on both sides, including after a TLS 1.3 server's session tickets; and a
// record sealed with them for OpenSSL (sealTls13Record) is the one OpenSSL would have written.
#include <gtest/gtest.h>
#include <linux/tls.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <cstdlib>

#include "framework/base/tls_wire.h"
#include "framework/tls/certificate.h"
#include "framework/tls/ktls.h"
#include "framework/tls/options.h"
#include "framework/tls/session.h"

namespace whorl::tls {
namespace {

std::string cert(const std::string& name) {
  return std::string(std::getenv("TEST_SRCDIR")) + "/whorl/certs/" + name;
}

void pump(TlsSession& from, TlsSession& to, bool* toDone) {
  std::string bytes(from.output());
  from.clearOutput();
  to.beginInput(bytes);
  bool done = false;
  if (!to.handshakeDone()) {
    ASSERT_TRUE(to.advanceHandshake(&done).isOk()) << to.failure().message();
    if (done) *toDone = true;
  }
  to.endInput();
}

// Decrypts one record with the kernel parameters; returns the inner plaintext or "".
std::string decryptRecord(const KernelTlsParams& p, const KernelTlsDirection& d, std::string_view rec) {
  bool tls13 = p.version == TLS_1_3_VERSION;
  bool chacha = p.cipherType == TLS_CIPHER_CHACHA20_POLY1305;
  const EVP_CIPHER* cipher = chacha ? EVP_chacha20_poly1305()
                             : p.cipherType == TLS_CIPHER_AES_GCM_256 ? EVP_aes_256_gcm()
                                                                      : EVP_aes_128_gcm();
  std::string header(rec.substr(0, 5));
  std::string_view body = rec.substr(5);
  unsigned char nonce[12];
  std::string seq(8, '\0');
  for (int i = 0; i < 8; ++i) seq[static_cast<size_t>(i)] = static_cast<char>(d.sequence >> (56 - 8 * i));
  std::string aad;
  if (!chacha && !tls13) {
    // TLS 1.2 GCM: salt || explicit nonce carried in the record.
    std::memcpy(nonce, d.salt.data(), 4);
    std::memcpy(nonce + 4, body.data(), 8);
    body.remove_prefix(8);
  } else {
    std::string iv = chacha ? d.iv : d.salt + d.iv;
    for (int i = 0; i < 12; ++i) {
      unsigned char s = i < 4 ? 0 : static_cast<unsigned char>(seq[static_cast<size_t>(i - 4)]);
      nonce[i] = static_cast<unsigned char>(iv[static_cast<size_t>(i)]) ^ s;
    }
  }
  size_t ctLen = body.size() - 16;
  if (tls13) {
    aad = header;
  } else {
    aad = seq + header.substr(0, 3);
    aad.push_back(static_cast<char>(ctLen >> 8));
    aad.push_back(static_cast<char>(ctLen & 0xff));
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_DecryptInit_ex(ctx, cipher, nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr);
  EVP_DecryptInit_ex(ctx, nullptr, nullptr, reinterpret_cast<const unsigned char*>(d.key.data()), nonce);
  int len = 0;
  EVP_DecryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()), static_cast<int>(aad.size()));
  std::string out(ctLen, '\0');
  EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                    reinterpret_cast<const unsigned char*>(body.data()), static_cast<int>(ctLen));
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, const_cast<char*>(body.data() + ctLen));
  int fin = 0;
  int ok = EVP_DecryptFinal_ex(ctx, nullptr, &fin);
  EVP_CIPHER_CTX_free(ctx);
  return ok == 1 ? out : "";
}

struct Case {
  const char* name;
  TLSVersion max;
  const char* tls12;
  const char* tls13;
  uint16_t expectCipher;
};

class KtlsKeysTest : public ::testing::TestWithParam<Case> {};

TEST_P(KtlsKeysTest, DerivedKeysDecryptTheNextRecordBothWays) {
  const Case& c = GetParam();
  auto pc = PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
  ASSERT_TRUE(pc.isOk());
  auto so = pc->options();
  so.extraCertChain = {*Certificate::loadPEMFile(cert("test/intermediate.pem"))};
  so.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString(c.tls12, c.tls13);
  so.lowerMaximumSecurityTo = c.max;
  // ktls=require: contexts keep the TLS 1.3 secrets even where this kernel has no kTLS (they
  // only do so by default where it has).
  so.ktls = KtlsMode::kRequire;
  auto server = so.context();
  ASSERT_TRUE(server.isOk()) << server.status().message();
  ClientTLSExtras extras;
  extras.lowerMaximumSecurityTo = c.max;
  extras.ktls = KtlsMode::kRequire;
  auto client = optionsForClientTLS(
      "localhost", trustRootFromCertificates({*Certificate::loadPEMFile(cert("test/ca.pem"))}), {}, {},
      extras);
  ASSERT_TRUE(client.isOk());
  auto cs = std::move(TlsSession::create(client.context()).value());
  auto ss = std::move(TlsSession::create(*server).value());
  bool cdone = false, sdone = false;
  ASSERT_TRUE(cs->advanceHandshake(&cdone).isOk());
  for (int i = 0; i < 10 && !(cdone && sdone); ++i) {
    pump(*cs, *ss, &sdone);
    pump(*ss, *cs, &cdone);
  }
  ASSERT_TRUE(cdone && sdone);
  // The server's tickets (TLS 1.3) are still in its output: the client reads them in userspace,
  // as a connection does before its receive side is offloaded.
  std::string tail(ss->output());
  ss->clearOutput();
  cs->beginInput(tail);
  cs->read([](std::string_view) { return true; });
  cs->endInput();

  auto sp = kernelTlsParams(*ss);
  auto cp = kernelTlsParams(*cs);
  ASSERT_TRUE(sp.isOk()) << sp.status().message();
  ASSERT_TRUE(cp.isOk()) << cp.status().message();
  EXPECT_EQ(sp->cipherType, c.expectCipher) << sp->cipherName;
  EXPECT_EQ(sp->tx.key, cp->rx.key);
  EXPECT_EQ(sp->tx.sequence, cp->rx.sequence);
  EXPECT_EQ(sp->rx.sequence, cp->tx.sequence);
  if (c.max == TLSVersion::TLSv1_3) {
    EXPECT_EQ(sp->tx.sequence, 2u) << "a TLS 1.3 server's two tickets use sequence numbers 0 and 1";
    EXPECT_EQ(cp->tx.sequence, 0u);
  } else {
    EXPECT_EQ(sp->tx.sequence, 1u) << "TLS 1.2: Finished was record 0 under the new keys";
    EXPECT_EQ(cp->tx.sequence, 1u);
  }
  ASSERT_FALSE(sp->tx.cryptoInfo.empty());

  // The next record each side writes decrypts with the parameters the kernel would get.
  ASSERT_TRUE(ss->write("from the server").isOk());
  std::string rec(ss->output());
  ss->clearOutput();
  std::string plain = decryptRecord(*sp, sp->tx, rec);
  ASSERT_FALSE(plain.empty()) << "server TX key/nonce/sequence wrong";
  EXPECT_EQ(plain.substr(0, 15), "from the server");
  if (c.max == TLSVersion::TLSv1_3) {
    // sealTls13Record (what hands tickets back to OpenSSL) makes the very record OpenSSL made.
    Tls13RecordKey key{sp->cipherType, sp->tx.key, sp->tx.salt + sp->tx.iv, sp->tx.sequence};
    auto sealed = sealTls13Record(key, tlswire::kApplicationData, "from the server");
    ASSERT_TRUE(sealed.isOk()) << sealed.status().message();
    EXPECT_EQ(*sealed, rec);
    // And a handshake message sealed under the next sequence number opens as one.
    ++key.sequence;
    sealed = sealTls13Record(key, tlswire::kHandshake, tlswire::kKeyUpdateNotRequested);
    ASSERT_TRUE(sealed.isOk()) << sealed.status().message();
    KernelTlsDirection next = sp->tx;
    ++next.sequence;
    EXPECT_EQ(decryptRecord(*sp, next, *sealed),
              std::string(tlswire::kKeyUpdateNotRequested) + static_cast<char>(tlswire::kHandshake));
  }
  ASSERT_TRUE(cs->write("from the client").isOk());
  rec = std::string(cs->output());
  cs->clearOutput();
  plain = decryptRecord(*cp, cp->tx, rec);
  ASSERT_FALSE(plain.empty()) << "client TX key/nonce/sequence wrong";
  EXPECT_EQ(plain.substr(0, 15), "from the client");
  // And the receiving side's RX parameters are the same keys.
  plain = decryptRecord(*sp, sp->rx, rec);
  EXPECT_EQ(plain.substr(0, 15), "from the client");
}

INSTANTIATE_TEST_SUITE_P(
    Ciphers, KtlsKeysTest,
    ::testing::Values(
        Case{"tls13_aes128", TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_AES_128_GCM_SHA256", TLS_CIPHER_AES_GCM_128},
        Case{"tls13_aes256", TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_AES_256_GCM_SHA384", TLS_CIPHER_AES_GCM_256},
        Case{"tls13_chacha", TLSVersion::TLSv1_3, "ECDHE+AESGCM", "TLS_CHACHA20_POLY1305_SHA256", TLS_CIPHER_CHACHA20_POLY1305},
        Case{"tls12_aes128", TLSVersion::TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", "", TLS_CIPHER_AES_GCM_128},
        Case{"tls12_aes256", TLSVersion::TLSv1_2, "ECDHE-ECDSA-AES256-GCM-SHA384", "", TLS_CIPHER_AES_GCM_256},
        Case{"tls12_chacha", TLSVersion::TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305", "", TLS_CIPHER_CHACHA20_POLY1305}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(KtlsKeysTest, CbcCiphersAreNotOffloadable) {
  auto pc = PrivateCertificate::loadPEMFile(cert("test/localhost-rsa.pem"));
  ASSERT_TRUE(pc.isOk());
  auto so = pc->options();
  so.extraCertChain = {*Certificate::loadPEMFile(cert("test/intermediate.pem"))};
  so.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString("ECDHE-RSA-AES128-SHA", "");
  so.lowerMaximumSecurityTo = TLSVersion::TLSv1_2;
  auto server = so.context();
  ASSERT_TRUE(server.isOk()) << server.status().message();
  ClientTLSExtras extras;
  extras.lowerMaximumSecurityTo = TLSVersion::TLSv1_2;
  extras.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString("ECDHE-RSA-AES128-SHA", "");
  auto client = optionsForClientTLS(
      "localhost", trustRootFromCertificates({*Certificate::loadPEMFile(cert("test/ca.pem"))}), {}, {}, extras);
  ASSERT_TRUE(client.isOk()) << client.status().message();
  auto cs = std::move(TlsSession::create(client.context()).value());
  auto ss = std::move(TlsSession::create(*server).value());
  bool cdone = false, sdone = false;
  ASSERT_TRUE(cs->advanceHandshake(&cdone).isOk());
  for (int i = 0; i < 10 && !(cdone && sdone); ++i) {
    pump(*cs, *ss, &sdone);
    pump(*ss, *cs, &cdone);
  }
  ASSERT_TRUE(sdone);
  auto sp = kernelTlsParams(*ss);
  ASSERT_FALSE(sp.isOk());
  EXPECT_NE(sp.status().message().find("cannot be offloaded"), std::string::npos) << sp.status().message();
}

}  // namespace
}  // namespace whorl::tls
