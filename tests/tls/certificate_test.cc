// Tests for certificate loading and inspection, key pairs, private certificates (key/certificate
// mismatch at load time), trust roots (files, directories, the platform store and its
// environment variables) and Diffie-Hellman parameters, against the test PKI in certs/.
#include "framework/tls/certificate.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/tls/options.h"
#include "tests/tls/tls_pipe.h"

namespace whorl::tls {
namespace {

using test::certPath;
using test::readCertFile;
using std::chrono::system_clock;

// True if `s` is non-empty and every character is an uppercase hex digit.
bool isUpperHex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

// "AB:CD:...": `bytes` uppercase hex pairs separated by colons.
bool isColonHex(std::string_view s, size_t bytes) {
  if (s.size() != bytes * 3 - 1) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i % 3 == 2) {
      if (s[i] != ':') return false;
    } else if (!isUpperHex(s.substr(i, 1))) {
      return false;
    }
  }
  return true;
}

system_clock::time_point utc(time_t seconds) { return system_clock::from_time_t(seconds); }

Certificate load(const std::string& name) {
  auto c = Certificate::loadPEMFile(certPath(name));
  EXPECT_TRUE(c.isOk()) << name << ": " << c.status().message();
  return c.isOk() ? *c : Certificate();
}

// Restores an environment variable when the test ends.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string tmpDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

// Verifies `leaf` (with `untrusted` intermediates) against the roots `trust` adds to a store.
bool verifies(const TrustRoot& trust, const Certificate& leaf, const std::vector<Certificate>& untrusted) {
  X509_STORE* store = X509_STORE_new();
  Status s = trust.addTo(store);
  EXPECT_TRUE(s.isOk()) << s.message();
  STACK_OF(X509)* chain = sk_X509_new_null();
  for (const auto& c : untrusted) sk_X509_push(chain, c.raw());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf.raw(), chain);
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  sk_X509_free(chain);
  X509_STORE_free(store);
  return ok;
}

TEST(CertificateTest, LoadPEMInspectsTheSeedCertificate) {
  auto cert = Certificate::loadPEM(readCertFile("public.pem"));
  ASSERT_TRUE(cert.isOk()) << cert.status().message();
  EXPECT_TRUE(cert->valid());
  EXPECT_EQ(cert->subject(), "CN=example.com");
  EXPECT_EQ(cert->issuer(), "CN=example.com");
  EXPECT_EQ(cert->commonName(), "example.com");
  EXPECT_EQ(cert->subjectAltNames(), std::vector<std::string>{"DNS:example.com"});
  EXPECT_EQ(cert->toString(), "<Certificate Subject=example.com Issuer=example.com>");
}

TEST(CertificateTest, LeafNamesAndIpSubjectAltNames) {
  Certificate c = load("test/localhost.crt");
  EXPECT_EQ(c.subject(), "CN=localhost");
  EXPECT_EQ(c.issuer(), "CN=whorl Test Intermediate CA,O=whorl");
  EXPECT_EQ(c.commonName(), "localhost");
  // IPv6 in OpenSSL's own notation (openssl x509 -ext subjectAltName prints the same).
  EXPECT_EQ(c.subjectAltNames(),
            (std::vector<std::string>{"DNS:localhost", "DNS:example.com", "IP Address:127.0.0.1",
                                      "IP Address:0:0:0:0:0:0:0:1"}));
  EXPECT_EQ(c.toString(), "<Certificate Subject=localhost Issuer=whorl Test Intermediate CA>");

  Certificate root = load("test/ca.pem");
  EXPECT_EQ(root.subject(), "CN=whorl Test Root CA,O=whorl");
  EXPECT_EQ(root.subject(), root.issuer());
  EXPECT_TRUE(root.subjectAltNames().empty());

  Certificate cnOnly = *Certificate::loadPEMFile(certPath("test/cn-only.pem"));
  EXPECT_EQ(cnOnly.commonName(), "cnonly.example");
  EXPECT_TRUE(cnOnly.subjectAltNames().empty());
}

TEST(CertificateTest, ValidityDates) {
  Certificate expired = load("test/expired.crt");
  EXPECT_EQ(expired.notBefore(), utc(1577836800));  // 2020-01-01T00:00:00Z
  EXPECT_EQ(expired.notAfter(), utc(1609459200));   // 2021-01-01T00:00:00Z

  Certificate future = load("test/notyetvalid.crt");
  EXPECT_EQ(future.notBefore(), utc(2208988800));  // 2040-01-01T00:00:00Z
  EXPECT_EQ(future.notAfter(), utc(2524608000));   // 2050-01-01T00:00:00Z

  // Leaves are valid from generation for 3650 days.
  Certificate leaf = load("test/localhost.crt");
  EXPECT_EQ(leaf.notAfter() - leaf.notBefore(), std::chrono::hours(24 * 3650));
  EXPECT_LT(leaf.notBefore(), system_clock::now());
  EXPECT_GT(leaf.notAfter(), system_clock::now());
}

TEST(CertificateTest, SerialNumberIsHexOfTheCertificateSerial) {
  Certificate c = load("test/localhost.crt");
  std::string serial = c.serialNumber();
  EXPECT_TRUE(isUpperHex(serial)) << serial;
  BIGNUM* bn = nullptr;
  ASSERT_GT(BN_hex2bn(&bn, serial.c_str()), 0);
  ASN1_INTEGER* parsed = BN_to_ASN1_INTEGER(bn, nullptr);
  EXPECT_EQ(ASN1_INTEGER_cmp(parsed, X509_get0_serialNumber(c.raw())), 0);
  ASN1_INTEGER_free(parsed);
  BN_free(bn);
  EXPECT_NE(serial, load("test/wronghost.crt").serialNumber());
}

TEST(CertificateTest, Sha256DigestIsColonSeparatedUppercaseHexOfTheDER) {
  Certificate c = load("test/localhost.crt");
  std::string digest = c.sha256Digest();
  EXPECT_TRUE(isColonHex(digest, 32)) << digest;

  std::string der = c.dumpDER();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  ASSERT_EQ(EVP_Digest(der.data(), der.size(), md, &n, EVP_sha256(), nullptr), 1);
  std::string expected;
  char buf[4];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%02X", md[i]);
    if (i) expected += ":";
    expected += buf;
  }
  EXPECT_EQ(digest, expected);
  EXPECT_NE(digest, load("test/ca.pem").sha256Digest());
}

TEST(CertificateTest, DumpPEMAndDERRoundTrip) {
  Certificate c = load("test/localhost.crt");
  std::string pem = c.dumpPEM();
  EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u);
  EXPECT_EQ(pem, readCertFile("test/localhost.crt"));
  auto again = Certificate::loadPEM(pem);
  ASSERT_TRUE(again.isOk());
  EXPECT_TRUE(*again == c);
  EXPECT_EQ(again->sha256Digest(), c.sha256Digest());
  auto fromDer = Certificate::loadDER(c.dumpDER());
  ASSERT_TRUE(fromDer.isOk());
  EXPECT_TRUE(*fromDer == c);
  EXPECT_FALSE(c == load("test/wronghost.crt"));
}

TEST(CertificateTest, LoadPEMTakesTheFirstCertificateAndLoadAllPEMTakesEvery) {
  auto first = Certificate::loadPEM(readCertFile("test/localhost-chain.pem"));
  ASSERT_TRUE(first.isOk());
  EXPECT_EQ(first->commonName(), "localhost");
  auto all = Certificate::loadAllPEM(readCertFile("test/localhost-chain.pem"));
  ASSERT_TRUE(all.isOk());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].commonName(), "whorl Test Intermediate CA");
}

TEST(CertificateTest, LoadErrors) {
  auto none = Certificate::loadPEM("not a certificate");
  ASSERT_FALSE(none.isOk());
  EXPECT_NE(none.status().message().find("no PEM certificate"), std::string::npos)
      << none.status().message();

  // A key-only file holds no certificate; the error names the file.
  auto keyOnly = Certificate::loadPEMFile(certPath("test/localhost.key"));
  ASSERT_FALSE(keyOnly.isOk());
  EXPECT_NE(keyOnly.status().message().find("localhost.key"), std::string::npos)
      << keyOnly.status().message();

  auto badDer = Certificate::loadDER("\x30\x03garbage");
  EXPECT_FALSE(badDer.isOk());
}

TEST(CertificateTest, MissingFileErrorsNameThePath) {
  const std::string path = tmpDir() + "/no-such-dir/missing.pem";
  auto c = Certificate::loadPEMFile(path);
  ASSERT_FALSE(c.isOk());
  EXPECT_NE(c.status().message().find(path), std::string::npos) << c.status().message();
  auto k = KeyPair::loadPEMFile(path);
  ASSERT_FALSE(k.isOk());
  EXPECT_NE(k.status().message().find(path), std::string::npos) << k.status().message();
  auto pc = PrivateCertificate::loadPEMFile(path);
  ASSERT_FALSE(pc.isOk());
  EXPECT_NE(pc.status().message().find(path), std::string::npos) << pc.status().message();
  auto dh = DiffieHellmanParameters::fromFile(path);
  ASSERT_FALSE(dh.isOk());
  EXPECT_NE(dh.status().message().find(path), std::string::npos) << dh.status().message();
  auto tr = trustRootFromPath(path);
  ASSERT_FALSE(tr.isOk());
  EXPECT_NE(tr.status().message().find(path), std::string::npos) << tr.status().message();
}

TEST(KeyPairTest, TypeNames) {
  auto ec = KeyPair::loadPEMFile(certPath("test/localhost.key"));
  ASSERT_TRUE(ec.isOk()) << ec.status().message();
  EXPECT_EQ(ec->typeName(), "EC P-256");
  auto rsa = KeyPair::loadPEMFile(certPath("test/localhost-rsa.key"));
  ASSERT_TRUE(rsa.isOk()) << rsa.status().message();
  EXPECT_EQ(rsa->typeName(), "RSA 2048");
  EXPECT_EQ(KeyPair().typeName(), "none");

  auto noKey = KeyPair::loadPEM(readCertFile("test/ca.pem"));
  ASSERT_FALSE(noKey.isOk());
  EXPECT_NE(noKey.status().message().find("no PEM private key"), std::string::npos)
      << noKey.status().message();
}

TEST(PrivateCertificateTest, LoadsTheSeedServerPem) {
  auto pc = PrivateCertificate::loadPEMFile(certPath("server.pem"));
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  EXPECT_TRUE(pc->valid());
  EXPECT_EQ(pc->certificate().commonName(), "example.com");
  EXPECT_EQ(pc->privateKey().typeName(), "EC P-256");
  EXPECT_TRUE(pc->chain().empty());
  EXPECT_EQ(pc->toString(), "<Certificate Subject=example.com Issuer=example.com>");
  // server.pem's certificate is public.pem.
  EXPECT_TRUE(pc->certificate() == load("public.pem"));
}

TEST(PrivateCertificateTest, ExtraCertificatesInThePemBecomeTheChain) {
  auto pc = PrivateCertificate::loadPEM(readCertFile("test/localhost.pem") +
                                        readCertFile("test/intermediate.pem"));
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  EXPECT_EQ(pc->certificate().commonName(), "localhost");
  ASSERT_EQ(pc->chain().size(), 1u);
  EXPECT_EQ(pc->chain()[0].commonName(), "whorl Test Intermediate CA");

  // The key alone plus a certificate-then-intermediate chain file works the same way.
  auto split = PrivateCertificate::loadPEM(readCertFile("test/localhost.key") +
                                           readCertFile("test/localhost-chain.pem"));
  ASSERT_TRUE(split.isOk()) << split.status().message();
  EXPECT_TRUE(split->certificate() == pc->certificate());
  EXPECT_EQ(split->chain().size(), 1u);
}

TEST(PrivateCertificateTest, KeyThatDoesNotMatchItsCertificateFailsAtLoad) {
  const std::string path = certPath("test/mismatch.pem");
  auto pc = PrivateCertificate::loadPEMFile(path);
  ASSERT_FALSE(pc.isOk());
  const std::string& msg = pc.status().message();
  EXPECT_NE(msg.find("private key does not match certificate"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("localhost"), std::string::npos) << msg;

  auto cert = Certificate::loadPEMFile(certPath("test/localhost.crt"));
  auto key = KeyPair::loadPEMFile(certPath("test/wronghost.pem"));
  ASSERT_TRUE(cert.isOk());
  ASSERT_TRUE(key.isOk());
  auto combined = PrivateCertificate::fromCertificateAndKeyPair(*cert, *key);
  ASSERT_FALSE(combined.isOk());
  EXPECT_NE(combined.status().message().find("does not match"), std::string::npos);

  auto good = PrivateCertificate::fromCertificateAndKeyPair(
      *cert, *KeyPair::loadPEMFile(certPath("test/localhost.key")));
  EXPECT_TRUE(good.isOk()) << good.status().message();
}

TEST(PrivateCertificateTest, PemWithoutKeyFails) {
  auto pc = PrivateCertificate::loadPEMFile(certPath("test/localhost.crt"));
  ASSERT_FALSE(pc.isOk());
  EXPECT_NE(pc.status().message().find("private key"), std::string::npos)
      << pc.status().message();
}

TEST(PrivateCertificateTest, OptionsCarryIdentityAndAuthorities) {
  auto pc = PrivateCertificate::loadPEMFile(certPath("server.pem"));
  ASSERT_TRUE(pc.isOk());
  CertificateOptions plain = pc->options();
  EXPECT_TRUE(plain.certificate == pc->certificate());
  EXPECT_TRUE(plain.privateKey.valid());
  EXPECT_FALSE(plain.trustRoot.has_value());

  CertificateOptions auth = pc->options({load("public.pem")});
  ASSERT_TRUE(auth.trustRoot.has_value());
  EXPECT_EQ(auth.trustRoot->kind(), TrustRoot::Kind::kCertificates);
  ASSERT_EQ(auth.trustRoot->certificates().size(), 1u);
  EXPECT_EQ(auth.trustRoot->certificates()[0].commonName(), "example.com");
}

TEST(TrustRootTest, FromCertificatesVerifiesItsChainsOnly) {
  Certificate leaf = load("test/localhost.crt");
  Certificate intermediate = load("test/intermediate.pem");
  TrustRoot ours = trustRootFromCertificates({load("test/ca.pem")});
  EXPECT_EQ(ours.kind(), TrustRoot::Kind::kCertificates);
  EXPECT_TRUE(verifies(ours, leaf, {intermediate}));
  EXPECT_FALSE(verifies(ours, leaf, {}));  // the intermediate is needed
  TrustRoot other = trustRootFromCertificates({load("test/other-ca.pem")});
  EXPECT_FALSE(verifies(other, leaf, {intermediate}));
  EXPECT_NE(ours.describe().find("whorl Test Root CA"), std::string::npos) << ours.describe();
}

TEST(TrustRootTest, FromPathFile) {
  auto bundle = trustRootFromPath(certPath("test/ca-bundle.pem"));
  ASSERT_TRUE(bundle.isOk()) << bundle.status().message();
  ASSERT_EQ(bundle->certificates().size(), 2u);
  EXPECT_EQ(bundle->certificates()[0].commonName(), "whorl Test Root CA");
  EXPECT_EQ(bundle->certificates()[1].commonName(), "whorl Test Intermediate CA");
  EXPECT_TRUE(verifies(*bundle, load("test/localhost.crt"), {}));

  auto keyOnly = trustRootFromPath(certPath("test/localhost.key"));
  EXPECT_FALSE(keyOnly.isOk());
}

TEST(TrustRootTest, FromPathDirectory) {
  auto dir = trustRootFromPath(certPath("test"));
  ASSERT_TRUE(dir.isOk()) << dir.status().message();
  bool haveRoot = false;
  bool haveOther = false;
  Certificate root = load("test/ca.pem");
  Certificate otherRoot = load("test/other-ca.pem");
  for (const auto& c : dir->certificates()) {
    haveRoot |= c == root;
    haveOther |= c == otherRoot;
  }
  EXPECT_TRUE(haveRoot);
  EXPECT_TRUE(haveOther);
  EXPECT_TRUE(verifies(*dir, load("test/localhost.crt"), {}));

  const std::string empty = tmpDir() + "/empty-trust-dir";
  mkdir(empty.c_str(), 0700);
  auto none = trustRootFromPath(empty);
  ASSERT_FALSE(none.isOk());
  EXPECT_NE(none.status().message().find(empty), std::string::npos) << none.status().message();
}

TEST(TrustRootTest, PlatformTrustHonoursSslCertFile) {
  const std::string ca = certPath("test/ca.pem");
  ScopedEnv file("SSL_CERT_FILE", ca);
  ScopedEnv dir("SSL_CERT_DIR", tmpDir() + "/no-such-cert-dir");
  auto trust = platformTrust();
  ASSERT_TRUE(trust.isOk()) << trust.status().message();
  EXPECT_EQ(trust->kind(), TrustRoot::Kind::kPlatform);
  EXPECT_NE(trust->describe().find(ca), std::string::npos) << trust->describe();
  Certificate intermediate = load("test/intermediate.pem");
  EXPECT_TRUE(verifies(*trust, load("test/localhost.crt"), {intermediate}));
  EXPECT_FALSE(verifies(*trust, load("test/other-client.pem"), {}));
}

TEST(TrustRootTest, PlatformTrustHonoursSslCertDir) {
  // An OpenSSL hashed directory needs c_rehash links; any directory with files counts as a
  // store, so only the choice of directory is checked here.
  const std::string d = certPath("test");
  ScopedEnv file("SSL_CERT_FILE", tmpDir() + "/no-such-bundle.pem");
  ScopedEnv dir("SSL_CERT_DIR", d);
  auto trust = platformTrust();
  ASSERT_TRUE(trust.isOk()) << trust.status().message();
  EXPECT_NE(trust->describe().find(d), std::string::npos) << trust->describe();
}

TEST(TrustRootTest, PlatformTrustWithoutAStoreNamesCaCertificates) {
  ScopedEnv file("SSL_CERT_FILE", tmpDir() + "/no-such-bundle.pem");
  ScopedEnv dir("SSL_CERT_DIR", tmpDir() + "/no-such-cert-dir");
  auto trust = platformTrust();
  ASSERT_FALSE(trust.isOk());
  const std::string& msg = trust.status().message();
  EXPECT_NE(msg.find("ca-certificates"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no-such-bundle.pem"), std::string::npos) << msg;

  // optionsForClientTLS without an explicit trust root uses the platform store: same error.
  auto client = optionsForClientTLS("localhost");
  ASSERT_FALSE(client.isOk());
  EXPECT_NE(client.status().message().find("ca-certificates"), std::string::npos)
      << client.status().message();
}

TEST(DiffieHellmanParametersTest, FromFile) {
  auto dh = DiffieHellmanParameters::fromFile(certPath("test/dh2048.pem"));
  ASSERT_TRUE(dh.isOk()) << dh.status().message();
  ASSERT_NE(dh->raw(), nullptr);
  EXPECT_EQ(EVP_PKEY_get_bits(dh->raw()), 2048);
  EXPECT_EQ(EVP_PKEY_get_base_id(dh->raw()), EVP_PKEY_DH);

  auto notDh = DiffieHellmanParameters::fromFile(certPath("test/ca.pem"));
  ASSERT_FALSE(notDh.isOk());
  EXPECT_NE(notDh.status().message().find("ca.pem"), std::string::npos)
      << notDh.status().message();
}

}  // namespace
}  // namespace whorl::tls
