// Tests for CertificateOptions' version rules (the seed's raiseMinimumTo /
// insecurelyLowerMinimumTo / lowerMaximumSecurityTo, with an inclusive maximum), cipher
// selection errors at construction, TLS version parsing, protocol negotiation support, and the
// errors context() and optionsForClientTLS() report for bad options. TLSOptions: built from
// CertificateOptions, failed builds kept and handed to startTLS, a Certificate or a vector of
// them as the trust root (with a handshake over an in-memory pipe to show it is the one used).
#include "framework/tls/options.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string>
#include <utility>

#include "framework/tls/tls_layer.h"
#include "tests/tls/tls_pipe.h"

namespace whorl::tls {
namespace {

using test::certPath;
using Range = std::pair<TLSVersion, TLSVersion>;

Range rangeOf(const CertificateOptions& o) {
  auto r = o.versionRange();
  EXPECT_TRUE(r.isOk()) << r.status().message();
  return r.isOk() ? *r : Range{TLSVersion::SSLv3, TLSVersion::SSLv3};
}

std::string errorOf(const CertificateOptions& o) {
  auto r = o.versionRange();
  EXPECT_FALSE(r.isOk()) << toString(r->first) << ".." << toString(r->second);
  return r.isOk() ? "" : r.status().message();
}

CertificateOptions serverOptions() {
  auto pc = PrivateCertificate::loadPEMFile(certPath("test/localhost.pem"));
  EXPECT_TRUE(pc.isOk()) << pc.status().message();
  return pc->options();
}

TEST(VersionRangeTest, DefaultIsTls12ToTls13) {
  CertificateOptions o;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_2, TLSVersion::TLSv1_3));
  EXPECT_EQ(kDefaultMinimumTLSVersion, TLSVersion::TLSv1_2);
}

TEST(VersionRangeTest, RaiseMinimumNeverGoesBelowTheDefault) {
  CertificateOptions o;
  o.raiseMinimumTo = TLSVersion::TLSv1_0;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_2, TLSVersion::TLSv1_3));
  o.raiseMinimumTo = TLSVersion::TLSv1_1;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_2, TLSVersion::TLSv1_3));
  o.raiseMinimumTo = TLSVersion::TLSv1_2;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_2, TLSVersion::TLSv1_3));
}

TEST(VersionRangeTest, RaiseMinimumToTls13) {
  CertificateOptions o;
  o.raiseMinimumTo = TLSVersion::TLSv1_3;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_3, TLSVersion::TLSv1_3));
}

TEST(VersionRangeTest, InsecurelyLowerMinimumSetsItExactly) {
  CertificateOptions o;
  o.insecurelyLowerMinimumTo = TLSVersion::TLSv1_0;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_0, TLSVersion::TLSv1_3));
  o.insecurelyLowerMinimumTo = TLSVersion::TLSv1_1;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_1, TLSVersion::TLSv1_3));
}

TEST(VersionRangeTest, RaiseTogetherWithInsecurelyLowerIsAnError) {
  CertificateOptions o;
  o.raiseMinimumTo = TLSVersion::TLSv1_3;
  o.insecurelyLowerMinimumTo = TLSVersion::TLSv1_0;
  std::string msg = errorOf(o);
  EXPECT_NE(msg.find("raiseMinimumTo"), std::string::npos) << msg;
  EXPECT_NE(msg.find("insecurelyLowerMinimumTo"), std::string::npos) << msg;
  // context() reports the same error rather than building something.
  CertificateOptions s = serverOptions();
  s.raiseMinimumTo = TLSVersion::TLSv1_3;
  s.insecurelyLowerMinimumTo = TLSVersion::TLSv1_0;
  auto ctx = s.context();
  ASSERT_FALSE(ctx.isOk());
  EXPECT_NE(ctx.status().message().find("insecurelyLowerMinimumTo"), std::string::npos);
}

TEST(VersionRangeTest, MinimumAboveMaximumIsAnError) {
  CertificateOptions o;
  o.raiseMinimumTo = TLSVersion::TLSv1_3;
  o.lowerMaximumSecurityTo = TLSVersion::TLSv1_2;
  std::string msg = errorOf(o);
  EXPECT_NE(msg.find("TLSv1_3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("TLSv1_2"), std::string::npos) << msg;

  // The default floor is above a maximum of TLSv1_1 too.
  CertificateOptions low;
  low.lowerMaximumSecurityTo = TLSVersion::TLSv1_1;
  errorOf(low);
}

TEST(VersionRangeTest, LowerMaximumIsInclusive) {
  CertificateOptions o;
  o.lowerMaximumSecurityTo = TLSVersion::TLSv1_2;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_2, TLSVersion::TLSv1_2));
  o.lowerMaximumSecurityTo = TLSVersion::TLSv1_3;
  EXPECT_EQ(rangeOf(o), Range(TLSVersion::TLSv1_2, TLSVersion::TLSv1_3));
  CertificateOptions old;
  old.insecurelyLowerMinimumTo = TLSVersion::TLSv1_0;
  old.lowerMaximumSecurityTo = TLSVersion::TLSv1_1;
  EXPECT_EQ(rangeOf(old), Range(TLSVersion::TLSv1_0, TLSVersion::TLSv1_1));

  // And the built context really allows exactly 1.2.
  CertificateOptions s = serverOptions();
  s.lowerMaximumSecurityTo = TLSVersion::TLSv1_2;
  auto ctx = s.context();
  ASSERT_TRUE(ctx.isOk()) << ctx.status().message();
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*ctx)->raw()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version((*ctx)->raw()), TLS1_2_VERSION);
}

TEST(VersionRangeTest, Sslv3IsAClearError) {
  CertificateOptions o;
  o.insecurelyLowerMinimumTo = TLSVersion::SSLv3;
  std::string msg = errorOf(o);
  EXPECT_NE(msg.find("SSLv3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("OpenSSL"), std::string::npos) << msg;

  CertificateOptions s = serverOptions();
  s.insecurelyLowerMinimumTo = TLSVersion::SSLv3;
  auto ctx = s.context();
  ASSERT_FALSE(ctx.isOk());
  EXPECT_NE(ctx.status().message().find("SSLv3"), std::string::npos);

  ClientTLSExtras sslv3;
  sslv3.insecurelyLowerMinimumTo = TLSVersion::SSLv3;
  auto client = optionsForClientTLS("localhost", trustRootFromCertificates({}), std::nullopt, {},
                                    sslv3);
  ASSERT_FALSE(client.isOk());
  EXPECT_NE(client.status().message().find("SSLv3"), std::string::npos);
}

TEST(VersionRangeTest, ContextAppliesTheRange) {
  CertificateOptions s = serverOptions();
  s.raiseMinimumTo = TLSVersion::TLSv1_3;
  auto ctx = s.context();
  ASSERT_TRUE(ctx.isOk()) << ctx.status().message();
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*ctx)->raw()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version((*ctx)->raw()), TLS1_3_VERSION);

  ClientTLSExtras max12;
  max12.lowerMaximumSecurityTo = TLSVersion::TLSv1_2;
  auto client = optionsForClientTLS("localhost", trustRootFromCertificates({}), std::nullopt, {},
                                    max12);
  ASSERT_TRUE(client.isOk()) << client.status().message();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(client.context()->raw()), TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version(client.context()->raw()), TLS1_2_VERSION);
}

TEST(ParseTLSVersionTest, AcceptsTheDocumentedSpellings) {
  EXPECT_EQ(*parseTLSVersion("TLSv1_2"), TLSVersion::TLSv1_2);
  EXPECT_EQ(*parseTLSVersion("TLSv1.2"), TLSVersion::TLSv1_2);
  EXPECT_EQ(*parseTLSVersion("1.2"), TLSVersion::TLSv1_2);
  EXPECT_EQ(*parseTLSVersion("tlsv1_3"), TLSVersion::TLSv1_3);
  EXPECT_EQ(*parseTLSVersion("TLSv1.3"), TLSVersion::TLSv1_3);
  EXPECT_EQ(*parseTLSVersion("TLSv1_0"), TLSVersion::TLSv1_0);
  EXPECT_EQ(*parseTLSVersion("1.1"), TLSVersion::TLSv1_1);
  EXPECT_EQ(*parseTLSVersion("SSLv3"), TLSVersion::SSLv3);
  for (TLSVersion v : {TLSVersion::SSLv3, TLSVersion::TLSv1_0, TLSVersion::TLSv1_1,
                       TLSVersion::TLSv1_2, TLSVersion::TLSv1_3}) {
    auto back = parseTLSVersion(toString(v));
    ASSERT_TRUE(back.isOk()) << toString(v);
    EXPECT_EQ(*back, v);
  }
  auto bad = parseTLSVersion("TLSv9");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("TLSv9"), std::string::npos);
  EXPECT_NE(bad.status().message().find("TLSv1_3"), std::string::npos);
  EXPECT_FALSE(parseTLSVersion("").isOk());
}

TEST(AcceptableCiphersTest, EmptySelectionIsAnErrorAtConstruction) {
  auto none = AcceptableCiphers::fromOpenSSLCipherString("NOSUCHCIPHER", "");
  ASSERT_FALSE(none.isOk());
  EXPECT_NE(none.status().message().find("NOSUCHCIPHER"), std::string::npos)
      << none.status().message();
  // A bad TLS 1.2 string is an error even when TLS 1.3 suites remain.
  EXPECT_FALSE(AcceptableCiphers::fromOpenSSLCipherString("NOSUCHCIPHER").isOk());
  EXPECT_FALSE(AcceptableCiphers::fromOpenSSLCipherString("", "TLS_NO_SUCH_SUITE").isOk());
  EXPECT_FALSE(AcceptableCiphers::fromOpenSSLCipherString("", "").isOk());
}

TEST(AcceptableCiphersTest, ValidSelections) {
  auto both = AcceptableCiphers::fromOpenSSLCipherString("ECDHE-ECDSA-AES128-GCM-SHA256");
  ASSERT_TRUE(both.isOk()) << both.status().message();
  EXPECT_EQ(both->tls12(), "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_NE(both->tls13().find("TLS_AES_128_GCM_SHA256"), std::string::npos);

  auto only13 = AcceptableCiphers::fromOpenSSLCipherString("", "TLS_CHACHA20_POLY1305_SHA256");
  ASSERT_TRUE(only13.isOk()) << only13.status().message();
  EXPECT_EQ(only13->tls13(), "TLS_CHACHA20_POLY1305_SHA256");

  CertificateOptions s = serverOptions();
  s.acceptableCiphers = *both;
  auto ctx = s.context();
  EXPECT_TRUE(ctx.isOk()) << ctx.status().message();
}

TEST(ProtocolNegotiationTest, MechanismsIncludeAlpnAndNpn) {
  unsigned m = protocolNegotiationMechanisms();
  EXPECT_NE(m & kALPN, 0u);
  EXPECT_NE(m & kNPN, 0u);  // Debian's OpenSSL 3 keeps NPN
}

TEST(ContextTest, ServerWithoutCertificateIsAnError) {
  CertificateOptions o;
  auto ctx = o.context();
  ASSERT_FALSE(ctx.isOk());
  EXPECT_NE(ctx.status().message().find("certificate"), std::string::npos)
      << ctx.status().message();

  CertificateOptions keyOnly;
  keyOnly.privateKey = *KeyPair::loadPEMFile(certPath("test/localhost.key"));
  EXPECT_FALSE(keyOnly.context().isOk());
}

TEST(ContextTest, KeyMismatchIsAnError) {
  CertificateOptions o;
  o.certificate = *Certificate::loadPEMFile(certPath("test/localhost.crt"));
  o.privateKey = *KeyPair::loadPEMFile(certPath("test/wronghost.pem"));
  auto ctx = o.context();
  ASSERT_FALSE(ctx.isOk());
  EXPECT_NE(ctx.status().message().find("does not match"), std::string::npos)
      << ctx.status().message();
}

// A failure while building the SNI contexts used to leak the NPN advertisement (allocated before
// them, owned only once they all built): LeakSanitizer fails this test under --config=asan.
TEST(ContextTest, SniFailureAfterAcceptableProtocolsLeaksNothing) {
  CertificateOptions o = serverOptions();
  o.acceptableProtocols = {"h2", "http/1.1"};
  o.sniCertificates.push_back(PrivateCertificate());
  auto ctx = o.context();
  ASSERT_FALSE(ctx.isOk());
  EXPECT_EQ(ctx.status().message(),
            "sniCertificates: an empty PrivateCertificate: a certificate and its key are needed");
}

TEST(ContextTest, ServerContextWithDhParametersAndTrustRoot) {
  CertificateOptions s = serverOptions();
  s.dhParameters = *DiffieHellmanParameters::fromFile(certPath("test/dh2048.pem"));
  s.trustRoot = trustRootFromCertificates({*Certificate::loadPEMFile(certPath("test/ca.pem"))});
  auto ctx = s.context();
  ASSERT_TRUE(ctx.isOk()) << ctx.status().message();
  EXPECT_EQ((*ctx)->role(), TlsContext::Role::kServer);
  EXPECT_NE(SSL_CTX_get_verify_mode((*ctx)->raw()) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT, 0);
  EXPECT_EQ((*ctx)->handshakeTimeout(), std::chrono::milliseconds(10000));
}

TEST(ClientOptionsTest, Errors) {
  auto empty = optionsForClientTLS("", trustRootFromCertificates({}));
  ASSERT_FALSE(empty.isOk());
  EXPECT_NE(empty.status().message().find("hostname"), std::string::npos);

  ClientTLSExtras both;
  both.raiseMinimumTo = TLSVersion::TLSv1_3;
  both.insecurelyLowerMinimumTo = TLSVersion::TLSv1_0;
  auto conflict =
      optionsForClientTLS("localhost", trustRootFromCertificates({}), std::nullopt, {}, both);
  EXPECT_FALSE(conflict.isOk());
}

TEST(ClientOptionsTest, Basics) {
  ClientTLSExtras extras;
  extras.handshakeTimeout = std::chrono::milliseconds(1234);
  auto c = optionsForClientTLS("localhost", trustRootFromCertificates({}), std::nullopt,
                               {"h2", "http/1.1"}, extras);
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c.context()->role(), TlsContext::Role::kClient);
  EXPECT_EQ(c.context()->hostname(), "localhost");
  EXPECT_EQ(c.context()->handshakeTimeout(), std::chrono::milliseconds(1234));
  EXPECT_EQ(c.context()->acceptableProtocols(), (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_NE(SSL_CTX_get_verify_mode(c.context()->raw()) & SSL_VERIFY_PEER, 0);
}

// --- TLSOptions: the one options type ---

// Server options whose build fails over a cipher choice: no TLS 1.2 cipher while only TLS 1.2 is
// allowed.
CertificateOptions unbuildableOptions() {
  CertificateOptions o = serverOptions();
  o.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString("", kDefaultTls13Ciphersuites);
  o.lowerMaximumSecurityTo = TLSVersion::TLSv1_2;
  return o;
}
const char* const kUnbuildableReason =
    "acceptableCiphers selects no TLS 1.2 cipher but TLS 1.3 is not allowed";

TEST(TLSOptionsTest, BuiltFromCertificateOptionsOnceAndSharedByCopies) {
  auto pc = PrivateCertificate::loadPEMFile(certPath("test/localhost.pem"));
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  TLSOptions options = pc->options();  // the implicit conversion Twisted users write
  ASSERT_TRUE(options.isOk()) << options.status().message();
  EXPECT_TRUE(options.status().isOk());
  ASSERT_NE(options.context(), nullptr);
  EXPECT_EQ(options.context()->role(), TlsContext::Role::kServer);
  TLSOptions copy = options;
  EXPECT_EQ(copy.context(), options.context());  // one SSL_CTX, not one per copy
  // What startTLS gets is that same context.
  std::shared_ptr<const api::TlsUpgrade> upgrade = options;
  EXPECT_EQ(upgrade.get(), options.context().get());
  EXPECT_TRUE(upgrade->status().isOk());
  EXPECT_FALSE(upgrade->actsAsClient());
}

TEST(TLSOptionsTest, AFailedBuildIsKeptAndReachesStartTls) {
  TLSOptions options = unbuildableOptions();
  ASSERT_FALSE(options.isOk());
  EXPECT_FALSE(static_cast<bool>(options));
  EXPECT_EQ(options.context(), nullptr);
  EXPECT_EQ(options.status().message(), kUnbuildableReason);
  EXPECT_EQ(options.status().code(), unbuildableOptions().context().status().code());
  // Converted for startTLS, the failure is the upgrade's status (transports return it).
  std::shared_ptr<const api::TlsUpgrade> upgrade = options;
  ASSERT_NE(upgrade, nullptr);
  EXPECT_EQ(upgrade->status().message(), kUnbuildableReason);
}

TEST(TLSOptionsTest, EmptyOptionsSayThereAreNone) {
  TLSOptions none;
  EXPECT_FALSE(none.isOk());
  EXPECT_EQ(none.status().message(), "no TLS options");
  TLSOptions null{std::shared_ptr<TlsContext>()};
  EXPECT_EQ(null.status().message(), "no TLS options");
  std::shared_ptr<const api::TlsUpgrade> upgrade = none;
  EXPECT_EQ(upgrade->status().message(), "no TLS options");
}

TEST(TLSOptionsTest, OptionsForClientTlsFailuresAreInTheOptions) {
  TLSOptions empty = optionsForClientTLS("", trustRootFromCertificates({}));
  ASSERT_FALSE(empty.isOk());
  EXPECT_EQ(empty.status().message(), "optionsForClientTLS needs a hostname");
  std::shared_ptr<const api::TlsUpgrade> upgrade = empty;
  EXPECT_EQ(upgrade->status().message(), "optionsForClientTLS needs a hostname");
}

// --- a Certificate or a vector of them wherever a trust root goes ---

TEST(TrustRootTest, CertificateAndVectorConvert) {
  auto ca = Certificate::loadPEMFile(certPath("test/ca.pem"));
  auto other = Certificate::loadPEMFile(certPath("test/other-ca.pem"));
  ASSERT_TRUE(ca.isOk() && other.isOk());
  TrustRoot one = *ca;
  EXPECT_EQ(one.kind(), TrustRoot::Kind::kCertificates);
  ASSERT_EQ(one.certificates().size(), 1u);
  EXPECT_TRUE(one.certificates()[0] == *ca);
  TrustRoot two = std::vector<Certificate>{*other, *ca};
  EXPECT_EQ(two.kind(), TrustRoot::Kind::kCertificates);
  EXPECT_EQ(two.certificates().size(), 2u);

  // CertificateOptions::trustRoot takes them too (client authentication).
  CertificateOptions s = serverOptions();
  s.trustRoot = *ca;
  auto ctx = s.context();
  ASSERT_TRUE(ctx.isOk()) << ctx.status().message();
  EXPECT_NE(SSL_CTX_get_verify_mode((*ctx)->raw()) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT, 0);
  s.trustRoot = std::vector<Certificate>{*other, *ca};
  EXPECT_TRUE(s.context().isOk());
}

TEST(TrustRootTest, ClientCertificateAsThirdArgumentWithACertificateRoot) {
  auto ca = Certificate::loadPEMFile(certPath("test/ca.pem"));
  auto client = PrivateCertificate::loadPEMFile(certPath("test/client.pem"));
  ASSERT_TRUE(ca.isOk() && client.isOk());
  TLSOptions options = optionsForClientTLS("localhost", *ca, *client);
  ASSERT_TRUE(options.isOk()) << options.status().message();
  EXPECT_EQ(options.context()->role(), TlsContext::Role::kClient);
  EXPECT_NE(SSL_CTX_get0_certificate(options.context()->raw()), nullptr);
}

// The client's handshake result against localhost.pem (with its intermediate), in memory.
Status clientHandshake(const TLSOptions& client) {
  if (!client) return client.status();
  CertificateOptions server = serverOptions();
  server.extraCertChain = {*Certificate::loadPEMFile(certPath("test/intermediate.pem"))};
  TLSOptions serverOptions = server;
  if (!serverOptions) return serverOptions.status();
  test::ManualReactor reactor;
  test::Pipe pipe(reactor, 1 << 20);
  auto result = std::make_shared<std::optional<Status>>();
  TlsLayerOptions layerOptions;
  layerOptions.onHandshake = [result](Status s) { *result = std::move(s); };
  auto app = [] { return std::make_unique<test::App>(std::make_shared<test::AppLog>()); };
  pipe.connect(std::make_unique<TlsLayer>(client.context(), app(), layerOptions),
               std::make_unique<TlsLayer>(serverOptions.context(), app()));
  pipe.pump();
  return result->value_or(Status(Status::Code::kTimeout, "no handshake result"));
}

TEST(TrustRootTest, CertificateRootVerifiesWithTheRightAuthorityOnly) {
  auto ca = Certificate::loadPEMFile(certPath("test/ca.pem"));
  auto other = Certificate::loadPEMFile(certPath("test/other-ca.pem"));
  ASSERT_TRUE(ca.isOk() && other.isOk());
  Status right = clientHandshake(optionsForClientTLS("localhost", *ca));
  EXPECT_TRUE(right.isOk()) << right.message();
  Status wrong = clientHandshake(optionsForClientTLS("localhost", *other));
  ASSERT_FALSE(wrong.isOk());
  EXPECT_NE(wrong.message().find("certificate verify failed: unknown authority"), std::string::npos)
      << wrong.message();
}

TEST(TrustRootTest, VectorRootVerifiesWhenItHoldsTheAuthority) {
  auto ca = Certificate::loadPEMFile(certPath("test/ca.pem"));
  auto other = Certificate::loadPEMFile(certPath("test/other-ca.pem"));
  ASSERT_TRUE(ca.isOk() && other.isOk());
  Status right =
      clientHandshake(optionsForClientTLS("localhost", std::vector<Certificate>{*other, *ca}));
  EXPECT_TRUE(right.isOk()) << right.message();
  Status wrong =
      clientHandshake(optionsForClientTLS("localhost", std::vector<Certificate>{*other}));
  ASSERT_FALSE(wrong.isOk());
  EXPECT_NE(wrong.message().find("certificate verify failed: unknown authority"), std::string::npos)
      << wrong.message();
}

}  // namespace
}  // namespace whorl::tls
