// Tests for TlsLayer: a client and a server layer (optionsForClientTLS / PrivateCertificate::
// options) talking over an in-memory pipe, pumped in chunks from 1 byte to 1 MiB. Covers the
// handshake and plaintext delivery, queued and coalesced writes, close_notify, abort, truncation,
// a 64 MiB transfer, the hostname matrix with its reasons, client authentication, the version
// matrix, the default cipher suites (and their order) and groups, ALPN/NPN, SNI, session
// resumption, the handshake timeout and non-TLS peers.
#include "framework/tls/tls_layer.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "framework/api/lower_transport.h"
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "tests/tls/tls_pipe.h"

namespace whorl::tls {
namespace {

using test::App;
using test::AppLog;
using test::certPath;
using test::ManualReactor;
using test::parseRecords;
using test::Pipe;
using test::readCertFile;

constexpr int kHandshake = 22;
constexpr int kApplicationData = 23;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string reasonOf(const std::shared_ptr<AppLog>& log) {
  return log->lost ? log->lost->message() : "(connectionLost not called)";
}

// A certificate with its key, plus the intermediate as the extra chain (the .pem files hold the
// key and the leaf only).
PrivateCertificate identity(const std::string& pem, bool withIntermediate = true) {
  std::string text = readCertFile(pem);
  if (withIntermediate) text += readCertFile("test/intermediate.pem");
  auto pc = PrivateCertificate::loadPEM(text);
  EXPECT_TRUE(pc.isOk()) << pem << ": " << pc.status().message();
  return pc.isOk() ? *pc : PrivateCertificate();
}

Certificate certificate(const std::string& name) {
  auto c = Certificate::loadPEMFile(certPath(name));
  EXPECT_TRUE(c.isOk()) << name << ": " << c.status().message();
  return c.isOk() ? *c : Certificate();
}

TrustRoot testRoot() { return trustRootFromCertificates({certificate("test/ca.pem")}); }

std::shared_ptr<TlsContext> serverContext(const CertificateOptions& o) {
  auto ctx = o.context();
  EXPECT_TRUE(ctx.isOk()) << ctx.status().message();
  return ctx.isOk() ? *ctx : nullptr;
}

std::shared_ptr<TlsContext> serverContext(const std::string& pem = "test/localhost.pem") {
  return serverContext(identity(pem).options());
}

std::shared_ptr<TlsContext> clientContext(const std::string& hostname,
                                          std::optional<TrustRoot> trust = std::nullopt,
                                          std::optional<PrivateCertificate> clientCert = std::nullopt,
                                          std::vector<std::string> protocols = {},
                                          ClientTLSExtras extras = {}) {
  auto c = optionsForClientTLS(hostname, trust ? *trust : testRoot(), std::move(clientCert),
                               std::move(protocols), extras);
  EXPECT_TRUE(c.isOk()) << c.status().message();
  return c.context();
}

ClientTLSExtras maxVersion(TLSVersion v) {
  ClientTLSExtras e;
  e.lowerMaximumSecurityTo = v;
  return e;
}

// One connection: the pipe, both applications' logs and the handshake results.
struct Connection {
  std::unique_ptr<Pipe> pipe;
  std::shared_ptr<AppLog> client = std::make_shared<AppLog>();
  std::shared_ptr<AppLog> server = std::make_shared<AppLog>();
  std::shared_ptr<std::optional<Status>> clientHandshake = std::make_shared<std::optional<Status>>();
  std::shared_ptr<std::optional<Status>> serverHandshake = std::make_shared<std::optional<Status>>();

  TlsLayer* clientLayer() const { return dynamic_cast<TlsLayer*>(pipe->client().protocol()); }
  TlsLayer* serverLayer() const { return dynamic_cast<TlsLayer*>(pipe->server().protocol()); }
  // The applications, while their connections are alive.
  App* clientApp() const {
    TlsLayer* l = clientLayer();
    return l ? static_cast<App*>(l->application()) : nullptr;
  }
  App* serverApp() const {
    TlsLayer* l = serverLayer();
    return l ? static_cast<App*>(l->application()) : nullptr;
  }
  bool bothConnected() const { return client->handshakes == 1 && server->handshakes == 1; }
};

class TlsLayerTest : public ::testing::Test {
 protected:
  // Builds both layers and connects them (nothing is pumped yet). Setup hooks configure the
  // applications before connectionMade.
  Connection connect(std::shared_ptr<TlsContext> clientCtx, std::shared_ptr<TlsContext> serverCtx,
                     size_t chunk = 1 << 20, std::function<void(App&)> clientSetup = {},
                     std::function<void(App&)> serverSetup = {}) {
    Connection c;
    c.pipe = std::make_unique<Pipe>(reactor_, chunk);
    auto clientApp = std::make_unique<App>(c.client);
    auto serverApp = std::make_unique<App>(c.server);
    if (clientSetup) clientSetup(*clientApp);
    if (serverSetup) serverSetup(*serverApp);
    TlsLayerOptions clientOptions;
    clientOptions.onHandshake = [r = c.clientHandshake](Status s) { *r = s; };
    TlsLayerOptions serverOptions;
    serverOptions.onHandshake = [r = c.serverHandshake](Status s) { *r = s; };
    std::unique_ptr<api::Protocol> client;
    std::unique_ptr<api::Protocol> server;
    if (clientCtx) client = std::make_unique<TlsLayer>(clientCtx, std::move(clientApp), clientOptions);
    if (serverCtx) server = std::make_unique<TlsLayer>(serverCtx, std::move(serverApp), serverOptions);
    c.pipe->connect(std::move(client), std::move(server));
    return c;
  }

  // Connects and pumps until quiet.
  Connection run(std::shared_ptr<TlsContext> clientCtx, std::shared_ptr<TlsContext> serverCtx,
                 std::function<void(App&)> clientSetup = {},
                 std::function<void(App&)> serverSetup = {}) {
    Connection c = connect(std::move(clientCtx), std::move(serverCtx), 1 << 20,
                           std::move(clientSetup), std::move(serverSetup));
    c.pipe->pump();
    return c;
  }

  // Closes a connected pair cleanly from the client side.
  void closeFromClient(Connection& c) {
    ASSERT_NE(c.clientApp(), nullptr);
    c.clientApp()->transport()->loseConnection();
    c.pipe->pump();
    ASSERT_TRUE(c.client->lost.has_value());
    ASSERT_TRUE(c.server->lost.has_value());
    EXPECT_TRUE(c.client->lost->isCleanClose()) << reasonOf(c.client);
    EXPECT_TRUE(c.server->lost->isCleanClose()) << reasonOf(c.server);
  }

  ManualReactor reactor_;
};

// --- handshake and data, in every chunk size ---

class ChunkedTest : public TlsLayerTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(ChunkedTest, HandshakeAndEcho) {
  const std::string secret = "SECRET-PLAINTEXT-MARKER";
  std::string payload;
  for (int i = 0; payload.size() < 40000; ++i) payload += secret + std::to_string(i) + "\n";

  Connection c = connect(clientContext("localhost"), serverContext(), GetParam(),
                         [&](App& app) {
                           app.onHandshake = [&](App& a) { a.transport()->write(payload); };
                         },
                         [](App& app) { app.echo = true; });
  // connectionMade at once, before any byte moved; nothing about the peer is known yet.
  EXPECT_EQ(c.client->connectionMade, 1);
  EXPECT_EQ(c.server->connectionMade, 1);
  EXPECT_EQ(c.client->handshakes, 0);
  EXPECT_EQ(c.client->versionAtMade, "");
  EXPECT_FALSE(c.client->peerCertAtMade);

  c.pipe->pump();
  ASSERT_TRUE(c.clientHandshake->has_value());
  EXPECT_TRUE(c.clientHandshake->value().isOk()) << c.clientHandshake->value().message();
  ASSERT_TRUE(c.serverHandshake->has_value());
  EXPECT_TRUE(c.serverHandshake->value().isOk()) << c.serverHandshake->value().message();
  EXPECT_EQ(c.client->handshakes, 1);
  EXPECT_EQ(c.server->handshakes, 1);
  EXPECT_TRUE(c.client->isTLS);
  EXPECT_EQ(c.client->tlsVersion, "TLSv1.3");
  EXPECT_EQ(c.server->tlsVersion, "TLSv1.3");
  EXPECT_FALSE(c.client->cipher.empty());
  EXPECT_EQ(c.client->cipher, c.server->cipher);
  EXPECT_EQ(c.client->peerCertificate.commonName(), "localhost");
  EXPECT_FALSE(c.server->peerCertificate.valid());  // no client certificate was asked for
  EXPECT_FALSE(c.client->protocol.has_value());

  // Plaintext only, all of it, in order, exactly once.
  EXPECT_EQ(c.server->received, payload);
  EXPECT_EQ(c.client->received, payload);
  EXPECT_EQ(c.client->events, (std::vector<std::string>{"made", "handshake", "data"}));
  EXPECT_EQ(c.server->events, (std::vector<std::string>{"made", "handshake", "data"}));
  // And the wire carried none of it in clear.
  EXPECT_FALSE(contains(c.pipe->client().wire(), secret));
  EXPECT_FALSE(contains(c.pipe->server().wire(), secret));
  // Every byte on the wire is whole TLS records.
  size_t total = 0;
  for (auto r : parseRecords(c.pipe->client().wire())) total += 5 + r.length;
  EXPECT_EQ(total, c.pipe->client().wire().size());

  // The handshake timers are gone.
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  closeFromClient(c);
}

INSTANTIATE_TEST_SUITE_P(Chunks, ChunkedTest, ::testing::Values(1, 7, 1500, 1 << 20),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return "chunk" + std::to_string(info.param);
                         });

TEST_F(TlsLayerTest, WritesBeforeTheHandshakeAreQueuedAndArriveInOrder) {
  Connection c = connect(
      clientContext("localhost"), serverContext(), 1 << 20,
      [](App& app) {
        app.onMade = [](App& a) {
          a.transport()->write("one ");
          a.transport()->writeSequence({"two ", "three"});
        };
      },
      [](App& app) { app.onMade = [](App& a) { a.transport()->write("hello from server"); }; });
  // Before the handshake only handshake records are on the wire.
  ASSERT_FALSE(c.pipe->client().wire().empty());
  for (auto r : parseRecords(c.pipe->client().wire())) EXPECT_EQ(r.type, kHandshake);
  EXPECT_GE(c.clientApp()->transport()->bufferedBytes(), 13u);

  c.pipe->pump();
  EXPECT_EQ(c.server->received, "one two three");
  EXPECT_EQ(c.client->received, "hello from server");
  EXPECT_EQ(c.server->events, (std::vector<std::string>{"made", "handshake", "data"}));
  EXPECT_EQ(c.client->events, (std::vector<std::string>{"made", "handshake", "data"}));
}

TEST_F(TlsLayerTest, LoseConnectionBeforeTheHandshakeStillDeliversQueuedWrites) {
  Connection c = run(clientContext("localhost"), serverContext(), [](App& app) {
    app.onMade = [](App& a) {
      a.transport()->write("last words");
      a.transport()->loseConnection();
      EXPECT_TRUE(a.transport()->disconnecting());
    };
  });
  EXPECT_EQ(c.server->received, "last words");
  ASSERT_TRUE(c.client->lost.has_value());
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_TRUE(c.client->lost->isCleanClose()) << reasonOf(c.client);
  EXPECT_TRUE(c.server->lost->isCleanClose()) << reasonOf(c.server);
}

TEST_F(TlsLayerTest, SmallWritesInOneTurnAreCoalescedIntoFullRecords) {
  Connection c = run(clientContext("localhost"), serverContext());
  ASSERT_TRUE(c.bothConnected());
  App* server = c.serverApp();
  ASSERT_NE(server, nullptr);

  size_t mark = c.pipe->server().wire().size();
  for (int i = 0; i < 100; ++i) server->transport()->write("0123456789");
  // Nothing is encrypted until the end of the turn.
  EXPECT_EQ(c.pipe->server().wire().size(), mark);
  EXPECT_EQ(server->transport()->bufferedBytes(), 1000u);
  reactor_.runSoon();
  auto records = parseRecords(std::string_view(c.pipe->server().wire()).substr(mark));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].type, kApplicationData);
  EXPECT_GE(records[0].length, 1000u);
  EXPECT_LT(records[0].length, 1000u + 64);

  // 40,000 bytes in 1,000-byte writes: three records, the first two full (16 KiB of plaintext).
  mark = c.pipe->server().wire().size();
  std::string kb(1000, 'x');
  for (int i = 0; i < 40; ++i) server->transport()->write(kb);
  reactor_.runSoon();
  records = parseRecords(std::string_view(c.pipe->server().wire()).substr(mark));
  ASSERT_EQ(records.size(), 3u);
  for (auto r : records) EXPECT_EQ(r.type, kApplicationData);
  EXPECT_GE(records[0].length, 16384u);
  EXPECT_GE(records[1].length, 16384u);
  EXPECT_LE(records[0].length, 16384u + 256);
  EXPECT_LT(records[2].length, 16384u);

  c.pipe->pump();
  std::string expected;
  for (int i = 0; i < 100; ++i) expected += "0123456789";
  expected += std::string(40000, 'x');
  EXPECT_EQ(c.client->received, expected);
}

// --- where the record crypto runs ---

TEST_F(TlsLayerTest, TlsModeIsUserspaceOverAPlainTransport) {
  // The words logs, metrics and tests print, as before the mode became an enum.
  EXPECT_STREQ(api::toString(api::TlsMode::kNone), "");
  EXPECT_STREQ(api::toString(api::TlsMode::kUserspace), "userspace");
  EXPECT_STREQ(api::toString(api::TlsMode::kKernelTx), "kernel TX");
  EXPECT_STREQ(api::toString(api::TlsMode::kKernelTxRx), "kernel TX+RX");
  // The pipe's ends are plain Transports (no LowerTransport): the layers write, schedule their
  // own flushes and stay in userspace.
  Connection c = run(clientContext("localhost"), serverContext());
  ASSERT_TRUE(c.bothConnected());
  EXPECT_EQ(api::lowerTransportOf(c.pipe->client()), nullptr);
  EXPECT_EQ(c.pipe->client().tlsMode(), api::TlsMode::kNone);
  EXPECT_EQ(c.clientApp()->transport()->tlsMode(), api::TlsMode::kUserspace);
  EXPECT_EQ(c.serverApp()->transport()->tlsMode(), api::TlsMode::kUserspace);
  closeFromClient(c);
}

TEST_F(TlsLayerTest, KtlsRequireOverAPlainTransportFailsWithTheReason) {
  ClientTLSExtras extras;
  extras.ktls = KtlsMode::kRequire;
  Connection c = run(clientContext("localhost", std::nullopt, std::nullopt, {}, extras),
                     serverContext());
  ASSERT_TRUE(c.clientHandshake->has_value());
  EXPECT_EQ(c.clientHandshake->value().message(),
            "ktls=require: kernel TLS needs a TCP socket transport");
}

// --- closing ---

TEST_F(TlsLayerTest, LoseConnectionSendsCloseNotifyAndDoesNotWaitForTheAnswer) {
  Connection c = run(clientContext("localhost"), serverContext());
  ASSERT_TRUE(c.bothConnected());
  c.pipe->setHoldEof(true);  // the server learns of the close only from close_notify

  c.clientApp()->transport()->write("bye");
  c.clientApp()->transport()->loseConnection();
  // The layer closed its transport at once: it does not wait for the server's close_notify.
  EXPECT_EQ(c.pipe->client().loseConnectionCalls(), 1);
  EXPECT_EQ(c.pipe->client().abortConnectionCalls(), 0);
  EXPECT_FALSE(c.client->lost.has_value());  // connectionLost comes from the transport

  c.pipe->pump();
  EXPECT_EQ(c.server->received, "bye");
  // The server saw close_notify (no EOF was delivered), answered and closed its side.
  EXPECT_EQ(c.pipe->server().loseConnectionCalls(), 1);
  ASSERT_TRUE(c.client->lost.has_value());
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_TRUE(c.client->lost->isCleanClose()) << reasonOf(c.client);
  EXPECT_TRUE(c.server->lost->isCleanClose()) << reasonOf(c.server);
  EXPECT_EQ(c.client->lostCalls, 1);
  EXPECT_EQ(c.server->lostCalls, 1);
}

TEST_F(TlsLayerTest, ServerLoseConnectionIsSeenAsCleanByTheClient) {
  Connection c = run(clientContext("localhost"), serverContext());
  ASSERT_TRUE(c.bothConnected());
  c.serverApp()->transport()->write("goodbye");
  c.serverApp()->transport()->loseConnection();
  c.pipe->pump();
  EXPECT_EQ(c.client->received, "goodbye");
  ASSERT_TRUE(c.client->lost.has_value());
  EXPECT_TRUE(c.client->lost->isCleanClose()) << reasonOf(c.client);
  EXPECT_TRUE(c.server->lost->isCleanClose()) << reasonOf(c.server);
}

TEST_F(TlsLayerTest, EofWithoutCloseNotifyIsNotCleanClose) {
  // The client's TCP connection closes under the TLS layer (no close_notify): a truncation the
  // server's application must be able to tell from an orderly close.
  Connection c = run(clientContext("localhost"), serverContext());
  ASSERT_TRUE(c.bothConnected());
  c.pipe->client().loseConnection();
  c.pipe->pump();
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_FALSE(c.server->lost->isCleanClose()) << reasonOf(c.server);
  EXPECT_TRUE(contains(reasonOf(c.server), "close_notify")) << reasonOf(c.server);
}

TEST_F(TlsLayerTest, AbortConnectionClosesImmediately) {
  Connection c = run(clientContext("localhost"), serverContext());
  ASSERT_TRUE(c.bothConnected());
  c.clientApp()->transport()->write("never sent");
  c.clientApp()->transport()->abortConnection();
  EXPECT_EQ(c.pipe->client().abortConnectionCalls(), 1);
  EXPECT_TRUE(c.clientApp()->transport()->disconnecting());
  c.pipe->pump();
  EXPECT_EQ(c.server->received, "");
  ASSERT_TRUE(c.client->lost.has_value());
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_EQ(c.client->lost->code(), Status::Code::kAborted) << reasonOf(c.client);
  EXPECT_FALSE(c.server->lost->isCleanClose()) << reasonOf(c.server);
}

TEST_F(TlsLayerTest, AbortDuringTheHandshake) {
  Connection c = connect(clientContext("localhost"), serverContext(), 1 << 20,
                         [](App& app) { app.onMade = [](App& a) { a.transport()->abortConnection(); }; });
  c.pipe->pump();
  EXPECT_EQ(c.client->handshakes, 0);
  EXPECT_EQ(c.server->handshakes, 0);
  ASSERT_TRUE(c.client->lost.has_value());
  EXPECT_EQ(c.client->lost->code(), Status::Code::kAborted) << reasonOf(c.client);
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_FALSE(c.server->lost->isCleanClose());
  ASSERT_TRUE(c.clientHandshake->has_value());
  EXPECT_FALSE(c.clientHandshake->value().isOk());
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
}

// --- a large transfer ---

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void update(std::string_view d) { EVP_DigestUpdate(ctx_, d.data(), d.size()); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    std::string s;
    char buf[3];
    for (unsigned i = 0; i < n; ++i) {
      std::snprintf(buf, sizeof(buf), "%02x", md[i]);
      s += buf;
    }
    return s;
  }

 private:
  EVP_MD_CTX* ctx_;
};

TEST_F(TlsLayerTest, SixtyFourMiBBothWaysWithChecksum) {
  constexpr size_t kTotal = 64u << 20;
  constexpr size_t kBlock = 1u << 20;
  Sha256 sent;
  Sha256 atServer;
  Sha256 atClient;
  size_t serverBytes = 0;
  size_t clientBytes = 0;
  Connection c = connect(
      clientContext("localhost"), serverContext(), 256 * 1024,
      [&](App& app) {
        app.keepReceived = false;
        app.onData = [&](App&, std::string_view d) {
          atClient.update(d);
          clientBytes += d.size();
        };
      },
      [&](App& app) {
        app.keepReceived = false;
        app.echo = true;
        app.onData = [&](App&, std::string_view d) {
          atServer.update(d);
          serverBytes += d.size();
        };
      });
  c.pipe->client().setRecordWire(false);
  c.pipe->server().setRecordWire(false);
  c.pipe->pump();
  ASSERT_TRUE(c.bothConnected());

  uint64_t x = 0x9E3779B97F4A7C15ull;
  std::string block(kBlock, '\0');
  for (size_t done = 0; done < kTotal; done += kBlock) {
    for (size_t i = 0; i < kBlock; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(&block[i], &x, 8);
    }
    sent.update(block);
    ASSERT_NE(c.clientApp(), nullptr);
    c.clientApp()->transport()->write(block);
    c.pipe->pump();
  }
  EXPECT_EQ(serverBytes, kTotal);
  EXPECT_EQ(clientBytes, kTotal);
  std::string expected = sent.hex();
  EXPECT_EQ(atServer.hex(), expected);
  EXPECT_EQ(atClient.hex(), expected);
  // Ciphertext overhead stays small: full records, not one per write.
  EXPECT_LT(c.pipe->client().bytesWritten(), kTotal + kTotal / 100);
  closeFromClient(c);
}

// --- the hostname matrix ---

struct NameCase {
  const char* label;
  const char* serverPem;
  bool withIntermediate;
  const char* hostname;
  bool ok;
  std::vector<const char*> reasons;  // substrings of the client's reason on failure
};

void PrintTo(const NameCase& c, std::ostream* os) { *os << c.label << " (" << c.hostname << ")"; }

class HostnameTest : public TlsLayerTest, public ::testing::WithParamInterface<NameCase> {};

TEST_P(HostnameTest, VerifiesTheServer) {
  const NameCase& p = GetParam();
  Connection c = run(clientContext(p.hostname),
                     serverContext(identity(p.serverPem, p.withIntermediate).options()),
                     [](App& app) {
                       app.onHandshake = [](App& a) { a.transport()->write("ping"); };
                     },
                     [](App& app) { app.echo = true; });
  if (p.ok) {
    ASSERT_TRUE(c.bothConnected()) << reasonOf(c.client);
    EXPECT_EQ(c.client->received, "ping");
    EXPECT_FALSE(c.client->lost.has_value()) << reasonOf(c.client);
    return;
  }
  EXPECT_EQ(c.client->handshakes, 0);
  EXPECT_EQ(c.server->handshakes, 0);
  EXPECT_EQ(c.server->received, "");
  ASSERT_TRUE(c.client->lost.has_value());
  EXPECT_EQ(c.client->lost->code(), Status::Code::kTls) << reasonOf(c.client);
  for (const char* r : p.reasons) {
    EXPECT_TRUE(contains(reasonOf(c.client), r)) << "reason: " << reasonOf(c.client)
                                                 << "\nwanted: " << r;
  }
  ASSERT_TRUE(c.clientHandshake->has_value());
  EXPECT_EQ(c.clientHandshake->value().message(), reasonOf(c.client));
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_FALSE(c.server->lost->isCleanClose()) << reasonOf(c.server);
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, HostnameTest,
    ::testing::Values(
        NameCase{"good", "test/localhost.pem", true, "localhost", true, {}},
        NameCase{"goodSecondSan", "test/localhost.pem", true, "example.com", true, {}},
        NameCase{"goodUppercase", "test/localhost.pem", true, "LOCALHOST", true, {}},
        NameCase{"wrongHost",
                 "test/wronghost.pem",
                 true,
                 "localhost",
                 false,
                 {"hostname mismatch: wanted localhost, got DNS:wrong.example.net"}},
        NameCase{"expired", "test/expired.pem", true, "localhost", false,
                 {"certificate has expired"}},
        NameCase{"notYetValid", "test/notyetvalid.pem", true, "localhost", false,
                 {"certificate is not yet valid"}},
        NameCase{"untrustedSelfSigned", "test/untrusted.pem", false, "localhost", false,
                 {"unknown authority", "not anchored"}},
        NameCase{"missingIntermediate", "test/localhost.pem", false, "localhost", false,
                 {"unknown authority"}},
        NameCase{"wildcardGood", "test/wildcard.pem", true, "www.example.com", true, {}},
        NameCase{"wildcardTwoLabels",
                 "test/wildcard.pem",
                 true,
                 "a.b.example.com",
                 false,
                 {"hostname mismatch: wanted a.b.example.com, got DNS:*.example.com"}},
        NameCase{"wildcardBareDomain",
                 "test/wildcard.pem",
                 true,
                 "example.com",
                 false,
                 {"hostname mismatch: wanted example.com, got DNS:*.example.com"}},
        NameCase{"wildcardNeverMatchesIdna",
                 "test/wildcard.pem",
                 true,
                 "xn--caf-dma.example.com",
                 false,
                 {"hostname mismatch: wanted xn--caf-dma.example.com, got DNS:*.example.com"}},
        NameCase{"wildcardNeverMatchesIdnaUppercase", "test/wildcard.pem", true,
                 "XN--caf-dma.example.com", false, {"hostname mismatch"}},
        NameCase{"idnaWildcardIdnaLabel", "test/idna-wildcard.pem", true,
                 "xn--80ak6aa92e.xn--caf-dma.example", false, {"hostname mismatch"}},
        NameCase{"idnaWildcardPlainLabel", "test/idna-wildcard.pem", true,
                 "www.xn--caf-dma.example", true, {}},
        NameCase{"ipv4San", "test/localhost.pem", true, "127.0.0.1", true, {}},
        NameCase{"ipv6San", "test/localhost.pem", true, "::1", true, {}},
        NameCase{"ipv6SanBracketed", "test/localhost.pem", true, "[::1]", true, {}},
        NameCase{"ipMismatch",
                 "test/localhost.pem",
                 true,
                 "127.0.0.2",
                 false,
                 {"IP address mismatch: wanted 127.0.0.2, got DNS:localhost, DNS:example.com, "
                  "IP Address:127.0.0.1"}},
        NameCase{"ipAgainstNameOnlyCertificate", "test/wronghost.pem", true, "127.0.0.1", false,
                 {"IP address mismatch: wanted 127.0.0.1, got DNS:wrong.example.net"}},
        NameCase{"cnOnlyGood", "test/cn-only.pem", true, "cnonly.example", true, {}},
        NameCase{"cnOnlyWrongName", "test/cn-only.pem", true, "localhost", false,
                 {"hostname mismatch: wanted localhost, got CN=cnonly.example"}}),
    [](const ::testing::TestParamInfo<NameCase>& info) { return std::string(info.param.label); });

TEST_F(TlsLayerTest, SendsSniForNamesButNotForIpLiterals) {
  Connection byName = run(clientContext("localhost"), serverContext());
  ASSERT_TRUE(byName.bothConnected());
  const char* sni = SSL_get_servername(byName.serverLayer()->session()->ssl(), TLSEXT_NAMETYPE_host_name);
  ASSERT_NE(sni, nullptr);
  EXPECT_STREQ(sni, "localhost");

  Connection byIp = run(clientContext("127.0.0.1"), serverContext());
  ASSERT_TRUE(byIp.bothConnected());
  EXPECT_EQ(SSL_get_servername(byIp.serverLayer()->session()->ssl(), TLSEXT_NAMETYPE_host_name),
            nullptr);
}

TEST_F(TlsLayerTest, PlatformTrustFromSslCertFile) {
  const char* oldFile = std::getenv("SSL_CERT_FILE");
  std::string saved = oldFile ? oldFile : "";
  setenv("SSL_CERT_FILE", certPath("test/ca.pem").c_str(), 1);
  auto opts = optionsForClientTLS("localhost");
  if (oldFile) {
    setenv("SSL_CERT_FILE", saved.c_str(), 1);
  } else {
    unsetenv("SSL_CERT_FILE");
  }
  ASSERT_TRUE(opts.isOk()) << opts.status().message();
  Connection c = run(opts.context(), serverContext());
  EXPECT_TRUE(c.bothConnected()) << reasonOf(c.client);
}

// --- client certificates ---

class ClientAuthTest : public TlsLayerTest {
 protected:
  std::shared_ptr<TlsContext> authServer() {
    return serverContext(identity("test/localhost.pem").options({certificate("test/ca.pem")}));
  }
  Connection runAuth(std::shared_ptr<TlsContext> client) {
    return run(client, authServer(), {}, [](App& app) {
      app.onHandshake = [](App& a) { a.transport()->write("secret"); };
    });
  }
};

TEST_F(ClientAuthTest, ClientWithoutCertificateIsRefused) {
  Connection c = runAuth(clientContext("localhost"));
  EXPECT_EQ(c.server->handshakes, 0);
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_EQ(c.server->lost->code(), Status::Code::kTls);
  EXPECT_TRUE(contains(reasonOf(c.server), "did not return a certificate")) << reasonOf(c.server);
  // In TLS 1.3 the client finishes first and learns of the refusal from the alert after it.
  ASSERT_TRUE(c.client->lost.has_value());
  EXPECT_FALSE(c.client->lost->isCleanClose()) << reasonOf(c.client);
  EXPECT_EQ(c.client->received, "");
}

TEST_F(ClientAuthTest, ClientWithoutCertificateIsRefusedInTls12) {
  Connection c = runAuth(clientContext("localhost", std::nullopt, std::nullopt, {},
                                       maxVersion(TLSVersion::TLSv1_2)));
  EXPECT_EQ(c.server->handshakes, 0);
  EXPECT_EQ(c.client->handshakes, 0);
  EXPECT_TRUE(contains(reasonOf(c.server), "did not return a certificate")) << reasonOf(c.server);
  ASSERT_TRUE(c.client->lost.has_value());
  EXPECT_EQ(c.client->lost->code(), Status::Code::kTls) << reasonOf(c.client);
  EXPECT_TRUE(contains(reasonOf(c.client), "TLS handshake failed")) << reasonOf(c.client);
}

TEST_F(ClientAuthTest, ClientCertificateFromAnotherAuthorityIsRefused) {
  Connection c = runAuth(clientContext("localhost", std::nullopt,
                                       identity("test/other-client.pem", false)));
  EXPECT_EQ(c.server->handshakes, 0);
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_TRUE(contains(reasonOf(c.server), "unknown authority")) << reasonOf(c.server);
  EXPECT_TRUE(contains(reasonOf(c.server), "whorl other client")) << reasonOf(c.server);
  ASSERT_TRUE(c.client->lost.has_value());
  EXPECT_FALSE(c.client->lost->isCleanClose()) << reasonOf(c.client);
  EXPECT_EQ(c.client->received, "");
}

TEST_F(ClientAuthTest, ClientCertificateWithoutItsIntermediateIsRefused) {
  Connection c = runAuth(clientContext("localhost", std::nullopt, identity("test/client.pem", false)));
  EXPECT_EQ(c.server->handshakes, 0);
  EXPECT_TRUE(contains(reasonOf(c.server), "unknown authority")) << reasonOf(c.server);
  EXPECT_EQ(c.client->received, "");
}

TEST_F(ClientAuthTest, GoodClientCertificateIsSeenByTheServerProtocol) {
  for (auto version : {TLSVersion::TLSv1_3, TLSVersion::TLSv1_2}) {
    SCOPED_TRACE(toString(version));
    Connection c = runAuth(clientContext("localhost", std::nullopt, identity("test/client.pem"),
                                         {}, maxVersion(version)));
    ASSERT_TRUE(c.bothConnected()) << reasonOf(c.server) << " / " << reasonOf(c.client);
    EXPECT_EQ(c.client->received, "secret");
    ASSERT_TRUE(c.server->peerCertificate.valid());
    EXPECT_EQ(c.server->peerCertificate.commonName(), "whorl test client");
    EXPECT_TRUE(c.server->peerCertificate == certificate("test/client.crt"));
    EXPECT_EQ(c.client->peerCertificate.commonName(), "localhost");
    closeFromClient(c);
  }
}

TEST_F(ClientAuthTest, ClientChainFromTheChainFile) {
  auto pc = PrivateCertificate::loadPEM(readCertFile("test/client.key") +
                                        readCertFile("test/client-chain.pem"));
  ASSERT_TRUE(pc.isOk()) << pc.status().message();
  Connection c = runAuth(clientContext("localhost", std::nullopt, *pc));
  ASSERT_TRUE(c.bothConnected()) << reasonOf(c.server);
  EXPECT_EQ(c.server->peerCertificate.commonName(), "whorl test client");
}

TEST_F(ClientAuthTest, SeedStyleSelfSignedAuthority) {
  // The seed's setup: server.pem is its own authority, for the server and for the client.
  auto seed = PrivateCertificate::loadPEMFile(certPath("server.pem"));
  ASSERT_TRUE(seed.isOk());
  auto server = serverContext(seed->options({certificate("public.pem")}));
  auto client = clientContext("example.com", trustRootFromCertificates({certificate("public.pem")}),
                              *seed);
  Connection c = run(client, server);
  ASSERT_TRUE(c.bothConnected()) << reasonOf(c.server) << " / " << reasonOf(c.client);
  EXPECT_EQ(c.server->peerCertificate.commonName(), "example.com");
}

// --- versions ---

TEST_F(TlsLayerTest, VersionMatrix) {
  struct Case {
    const char* label;
    std::optional<TLSVersion> serverMin;
    std::optional<TLSVersion> serverMax;
    ClientTLSExtras client;
    const char* version;  // nullptr: must fail
  };
  ClientTLSExtras defaults;
  ClientTLSExtras max12 = maxVersion(TLSVersion::TLSv1_2);
  ClientTLSExtras min13;
  min13.raiseMinimumTo = TLSVersion::TLSv1_3;
  ClientTLSExtras only10;
  only10.insecurelyLowerMinimumTo = TLSVersion::TLSv1_0;
  only10.lowerMaximumSecurityTo = TLSVersion::TLSv1_0;
  std::vector<Case> cases = {
      {"defaults", std::nullopt, std::nullopt, defaults, "TLSv1.3"},
      {"clientMax12", std::nullopt, std::nullopt, max12, "TLSv1.2"},
      {"serverMax12Inclusive", std::nullopt, TLSVersion::TLSv1_2, defaults, "TLSv1.2"},
      {"serverMin13ClientMax12", TLSVersion::TLSv1_3, std::nullopt, max12, nullptr},
      {"clientMin13ServerMax12", std::nullopt, TLSVersion::TLSv1_2, min13, nullptr},
      {"clientOnlyTls10", std::nullopt, std::nullopt, only10, nullptr},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.label);
    CertificateOptions o = identity("test/localhost.pem").options();
    o.raiseMinimumTo = k.serverMin;
    o.lowerMaximumSecurityTo = k.serverMax;
    Connection c = run(clientContext("localhost", std::nullopt, std::nullopt, {}, k.client),
                       serverContext(o));
    if (k.version != nullptr) {
      ASSERT_TRUE(c.bothConnected()) << reasonOf(c.client);
      EXPECT_EQ(c.client->tlsVersion, k.version);
      EXPECT_EQ(c.server->tlsVersion, k.version);
      continue;
    }
    EXPECT_EQ(c.client->handshakes, 0);
    EXPECT_EQ(c.server->handshakes, 0);
    ASSERT_TRUE(c.client->lost.has_value());
    ASSERT_TRUE(c.server->lost.has_value());
    EXPECT_EQ(c.client->lost->code(), Status::Code::kTls);
    EXPECT_EQ(c.server->lost->code(), Status::Code::kTls);
    // The side that detects it names the version; the other gets the protocol_version alert.
    EXPECT_TRUE(contains(reasonOf(c.client), "protocol version")) << reasonOf(c.client);
    EXPECT_TRUE(contains(reasonOf(c.server), "TLS protocol version in common"))
        << reasonOf(c.server);
  }
}

TEST_F(TlsLayerTest, CipherSelectionAndDhParameters) {
  // Finite-field DHE needs the DH parameters and an RSA certificate.
  CertificateOptions o = identity("test/localhost-rsa.pem").options();
  o.dhParameters = *DiffieHellmanParameters::fromFile(certPath("test/dh2048.pem"));
  ClientTLSExtras e = maxVersion(TLSVersion::TLSv1_2);
  e.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString("DHE-RSA-AES128-GCM-SHA256", "");
  Connection c = run(clientContext("localhost", std::nullopt, std::nullopt, {}, e), serverContext(o));
  ASSERT_TRUE(c.bothConnected()) << reasonOf(c.client);
  EXPECT_EQ(c.client->cipher, "DHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(c.server->cipher, "DHE-RSA-AES128-GCM-SHA256");

  // No cipher in common fails the handshake.
  CertificateOptions ec = identity("test/localhost.pem").options();
  ec.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString("ECDHE-ECDSA-AES256-GCM-SHA384", "");
  ClientTLSExtras e2 = maxVersion(TLSVersion::TLSv1_2);
  e2.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString("ECDHE-ECDSA-AES128-GCM-SHA256", "");
  Connection bad = run(clientContext("localhost", std::nullopt, std::nullopt, {}, e2), serverContext(ec));
  EXPECT_EQ(bad.client->handshakes, 0);
  ASSERT_TRUE(bad.server->lost.has_value());
  EXPECT_EQ(bad.server->lost->code(), Status::Code::kTls);
  EXPECT_TRUE(contains(reasonOf(bad.server), "cipher")) << reasonOf(bad.server);
  ASSERT_TRUE(bad.client->lost.has_value());
  EXPECT_EQ(bad.client->lost->code(), Status::Code::kTls) << reasonOf(bad.client);
}

// --- the default cipher suites and groups (README.md, "TLS defaults") ---

// A TLS 1.2 client offering exactly `ciphers` (an OpenSSL cipher string, in its order).
std::shared_ptr<TlsContext> tls12Client(const std::string& ciphers) {
  ClientTLSExtras e = maxVersion(TLSVersion::TLSv1_2);
  auto selection = AcceptableCiphers::fromOpenSSLCipherString(ciphers, "");
  EXPECT_TRUE(selection.isOk()) << selection.status().message();
  if (selection.isOk()) e.acceptableCiphers = *selection;
  return clientContext("localhost", std::nullopt, std::nullopt, {}, e);
}

// What `client` and `server` agree on, or "refused: <the server's reason>".
std::string negotiated(const Connection& c) {
  if (c.bothConnected()) return c.server->cipher;
  return "refused: " + reasonOf(c.server);
}

TEST_F(TlsLayerTest, DefaultTls12CiphersAreForwardSecretAeadInTheServersOrder) {
  auto ecdsa = serverContext();  // test/localhost.pem: ECDSA P-256
  // The client's order does not matter: AES-128-GCM is the server's first choice.
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"),
                           ecdsa)),
            "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-ECDSA-AES256-GCM-SHA384"), ecdsa)),
            "ECDHE-ECDSA-AES256-GCM-SHA384");
  // ... except that a client putting ChaCha20 first (no AES instructions) gets ChaCha20.
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"),
                           ecdsa)),
            "ECDHE-ECDSA-CHACHA20-POLY1305");
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305"),
                           ecdsa)),
            "ECDHE-ECDSA-AES128-GCM-SHA256");
  // No CBC suite, with or without forward secrecy, is accepted.
  for (const char* cbc : {"ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384",
                          "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA"}) {
    SCOPED_TRACE(cbc);
    std::string got = negotiated(run(tls12Client(cbc), ecdsa));
    EXPECT_TRUE(contains(got, "refused: ") && contains(got, "no shared cipher")) << got;
  }

  // With an RSA certificate: ECDHE-RSA the same way; no static RSA key transport (no forward
  // secrecy, ROBOT); DHE-RSA only with dhParameters.
  auto rsa = serverContext("test/localhost-rsa.pem");
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"), rsa)),
            "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384"), rsa)),
            "ECDHE-RSA-CHACHA20-POLY1305");
  for (const char* refused : {"AES128-GCM-SHA256", "AES128-SHA", "ECDHE-RSA-AES128-SHA256",
                              "DHE-RSA-AES128-GCM-SHA256"}) {
    SCOPED_TRACE(refused);
    std::string got = negotiated(run(tls12Client(refused), rsa));
    EXPECT_TRUE(contains(got, "refused: ") && contains(got, "no shared cipher")) << got;
  }
  CertificateOptions withDh = identity("test/localhost-rsa.pem").options();
  withDh.dhParameters = *DiffieHellmanParameters::fromFile(certPath("test/dh2048.pem"));
  auto rsaDh = serverContext(withDh);
  EXPECT_EQ(negotiated(run(tls12Client("DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"), rsaDh)),
            "DHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(negotiated(run(tls12Client("DHE-RSA-CHACHA20-POLY1305"), rsaDh)),
            "DHE-RSA-CHACHA20-POLY1305");
  // ECDHE still comes before DHE (cheaper, and the client chooses no group).
  EXPECT_EQ(negotiated(run(tls12Client("DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"), rsaDh)),
            "ECDHE-RSA-AES256-GCM-SHA384");
}

TEST_F(TlsLayerTest, Tls13DefaultsAreUnchangedAndTheServerChooses) {
  auto server = serverContext();
  Connection c = run(clientContext("localhost"), server);
  ASSERT_TRUE(c.bothConnected()) << reasonOf(c.client);
  EXPECT_EQ(c.server->tlsVersion, "TLSv1.3");
  EXPECT_EQ(c.server->cipher, "TLS_AES_128_GCM_SHA256");
  ClientTLSExtras aes256First;
  aes256First.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString(
      "", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
  Connection d = run(clientContext("localhost", std::nullopt, std::nullopt, {}, aes256First), server);
  ASSERT_TRUE(d.bothConnected()) << reasonOf(d.client);
  EXPECT_EQ(d.server->cipher, "TLS_AES_128_GCM_SHA256");
  ClientTLSExtras chachaFirst;
  chachaFirst.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString(
      "", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
  Connection e = run(clientContext("localhost", std::nullopt, std::nullopt, {}, chachaFirst), server);
  ASSERT_TRUE(e.bothConnected()) << reasonOf(e.client);
  EXPECT_EQ(e.server->cipher, "TLS_CHACHA20_POLY1305_SHA256");
}

TEST_F(TlsLayerTest, AcceptableCiphersWidensTheServersList) {
  // A server that must serve a CBC-only TLS 1.2 client says so; its own order still applies.
  CertificateOptions wide = identity("test/localhost.pem").options();
  wide.acceptableCiphers = *AcceptableCiphers::fromOpenSSLCipherString(
      std::string(kDefaultServerTls12Ciphers) + ":ECDHE-ECDSA-AES128-SHA256");
  auto server = serverContext(wide);
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-ECDSA-AES128-SHA256"), server)),
            "ECDHE-ECDSA-AES128-SHA256");
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"), server)),
            "ECDHE-ECDSA-AES256-GCM-SHA384");
  // The default client offers AEAD only, so it cannot reach a CBC-only server ...
  CertificateOptions cbcOnly = identity("test/localhost.pem").options();
  cbcOnly.acceptableCiphers =
      *AcceptableCiphers::fromOpenSSLCipherString("ECDHE-ECDSA-AES128-SHA256", "");
  ClientTLSExtras defaults12 = maxVersion(TLSVersion::TLSv1_2);
  std::string got = negotiated(
      run(clientContext("localhost", std::nullopt, std::nullopt, {}, defaults12), serverContext(cbcOnly)));
  EXPECT_TRUE(contains(got, "refused: ") && contains(got, "cipher")) << got;
  // ... and offers no finite-field DHE either (the server would choose its group).
  CertificateOptions dheOnly = identity("test/localhost-rsa.pem").options();
  dheOnly.dhParameters = *DiffieHellmanParameters::fromFile(certPath("test/dh2048.pem"));
  dheOnly.acceptableCiphers =
      *AcceptableCiphers::fromOpenSSLCipherString("DHE-RSA-AES128-GCM-SHA256", "");
  got = negotiated(run(clientContext("localhost", std::nullopt, std::nullopt, {}, defaults12),
                       serverContext(dheOnly)));
  EXPECT_TRUE(contains(got, "refused: ") && contains(got, "cipher")) << got;
}

TEST_F(TlsLayerTest, InsecurelyLoweredMinimumAddsForwardSecretCbcSuitesLast) {
  // TLS 1.0 and 1.1 have no AEAD suites: asking for them brings the ECDHE CBC ones, after the
  // AEAD ones, so a TLS 1.2 client offering both still gets AEAD.
  CertificateOptions old = identity("test/localhost.pem").options();
  old.insecurelyLowerMinimumTo = TLSVersion::TLSv1_0;
  auto server = serverContext(old);
  ClientTLSExtras only10;
  only10.insecurelyLowerMinimumTo = TLSVersion::TLSv1_0;
  only10.lowerMaximumSecurityTo = TLSVersion::TLSv1_0;
  Connection c = run(clientContext("localhost", std::nullopt, std::nullopt, {}, only10), server);
  ASSERT_TRUE(c.bothConnected()) << reasonOf(c.server);
  EXPECT_EQ(c.server->tlsVersion, "TLSv1");
  EXPECT_EQ(c.server->cipher, "ECDHE-ECDSA-AES128-SHA");
  EXPECT_EQ(negotiated(run(tls12Client("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-GCM-SHA384"), server)),
            "ECDHE-ECDSA-AES256-GCM-SHA384");
}

TEST_F(TlsLayerTest, KeyExchangeGroupsAreX25519P256AndP384) {
  // An RSA certificate: in TLS 1.2 an ECDSA certificate's own curve must also be among the
  // client's groups, which would mix a second rule into this one.
  auto server = serverContext("test/localhost-rsa.pem");
  for (auto [groups, want] : {std::pair("X25519", true), std::pair("P-256", true),
                              std::pair("P-384", true), std::pair("P-521", false),
                              std::pair("X448", false), std::pair("ffdhe2048", false),
                              std::pair("ffdhe8192", false)}) {
    for (TLSVersion max : {TLSVersion::TLSv1_2, TLSVersion::TLSv1_3}) {
      if (std::string(groups).rfind("ffdhe", 0) == 0 && max == TLSVersion::TLSv1_2) continue;
      SCOPED_TRACE(std::string(groups) + " " + toString(max));
      auto client = clientContext("localhost", std::nullopt, std::nullopt, {}, maxVersion(max));
      // The client is built here and used by this connection only: changing its groups is safe.
      ASSERT_EQ(SSL_CTX_set1_groups_list(client->raw(), groups), 1);
      Connection c = run(client, server);
      EXPECT_EQ(c.bothConnected(), want) << reasonOf(c.server);
      if (!want) {
        EXPECT_TRUE(contains(reasonOf(c.server), max == TLSVersion::TLSv1_3 ? "no suitable key share"
                                                                           : "no shared cipher"))
            << reasonOf(c.server);
      }
    }
  }
}

// --- ALPN and NPN ---

std::shared_ptr<TlsContext> alpnServer(std::vector<std::string> protocols) {
  CertificateOptions o = identity("test/localhost.pem").options();
  o.acceptableProtocols = std::move(protocols);
  return serverContext(o);
}

TEST_F(TlsLayerTest, AlpnServerTakesTheEarliestInItsOwnList) {
  for (auto version : {TLSVersion::TLSv1_3, TLSVersion::TLSv1_2}) {
    SCOPED_TRACE(toString(version));
    Connection c = run(clientContext("localhost", std::nullopt, std::nullopt, {"http/1.1", "h2"},
                                     maxVersion(version)),
                       alpnServer({"h2", "http/1.1"}));
    ASSERT_TRUE(c.bothConnected()) << reasonOf(c.client);
    EXPECT_EQ(c.client->protocol, std::optional<std::string>("h2"));
    EXPECT_EQ(c.server->protocol, std::optional<std::string>("h2"));

    Connection r = run(clientContext("localhost", std::nullopt, std::nullopt, {"h2", "http/1.1"},
                                     maxVersion(version)),
                       alpnServer({"http/1.1", "h2"}));
    ASSERT_TRUE(r.bothConnected()) << reasonOf(r.client);
    EXPECT_EQ(r.client->protocol, std::optional<std::string>("http/1.1"));
    EXPECT_EQ(r.server->protocol, std::optional<std::string>("http/1.1"));
  }
}

TEST_F(TlsLayerTest, AlpnOneSideEmptyGivesNoneAndNoError) {
  Connection clientEmpty = run(clientContext("localhost"), alpnServer({"h2", "http/1.1"}));
  ASSERT_TRUE(clientEmpty.bothConnected()) << reasonOf(clientEmpty.client);
  EXPECT_EQ(clientEmpty.client->protocol, std::nullopt);
  EXPECT_EQ(clientEmpty.server->protocol, std::nullopt);

  Connection serverEmpty = run(
      clientContext("localhost", std::nullopt, std::nullopt, {"h2", "http/1.1"}), alpnServer({}));
  ASSERT_TRUE(serverEmpty.bothConnected()) << reasonOf(serverEmpty.client);
  EXPECT_EQ(serverEmpty.client->protocol, std::nullopt);
  EXPECT_EQ(serverEmpty.server->protocol, std::nullopt);
}

TEST_F(TlsLayerTest, AlpnWithoutOverlapFailsTheHandshake) {
  Connection c = run(clientContext("localhost", std::nullopt, std::nullopt, {"http/1.1"}),
                     alpnServer({"h2", "spdy/3"}));
  EXPECT_EQ(c.client->handshakes, 0);
  EXPECT_EQ(c.server->handshakes, 0);
  ASSERT_TRUE(c.client->lost.has_value());
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_EQ(c.client->lost->code(), Status::Code::kTls);
  EXPECT_EQ(c.server->lost->code(), Status::Code::kTls);
  EXPECT_TRUE(contains(reasonOf(c.client), "application protocol")) << reasonOf(c.client);
  EXPECT_TRUE(contains(reasonOf(c.server), "application protocol")) << reasonOf(c.server);
}

// A client that offers NPN only (its ALPN list cleared), over TLS 1.2.
std::shared_ptr<TlsContext> npnOnlyClient(std::vector<std::string> protocols) {
  auto ctx = clientContext("localhost", std::nullopt, std::nullopt, std::move(protocols),
                           maxVersion(TLSVersion::TLSv1_2));
  if (ctx) SSL_CTX_set_alpn_protos(ctx->raw(), nullptr, 0);
  return ctx;
}

TEST_F(TlsLayerTest, NpnClientSelectsTheEarliestInItsOwnList) {
  Connection c = run(npnOnlyClient({"http/1.1", "h2"}), alpnServer({"h2", "http/1.1"}));
  ASSERT_TRUE(c.bothConnected()) << reasonOf(c.client);
  EXPECT_EQ(c.client->tlsVersion, "TLSv1.2");
  // With NPN the client selects.
  EXPECT_EQ(c.client->protocol, std::optional<std::string>("http/1.1"));
  EXPECT_EQ(c.server->protocol, std::optional<std::string>("http/1.1"));
}

TEST_F(TlsLayerTest, NpnWithoutOverlapFailsTheHandshake) {
  Connection c = run(npnOnlyClient({"spdy/3"}), alpnServer({"h2", "http/1.1"}));
  EXPECT_EQ(c.client->handshakes, 0);
  EXPECT_EQ(c.server->handshakes, 0);
  ASSERT_TRUE(c.client->lost.has_value());
  EXPECT_EQ(c.client->lost->code(), Status::Code::kTls) << reasonOf(c.client);
}

// --- SNI ---

TEST_F(TlsLayerTest, ServerChoosesTheCertificateByServerName) {
  CertificateOptions o = identity("test/localhost.pem").options();
  o.sniCertificates = {identity("test/wronghost.pem")};
  o.acceptableProtocols = {"h2"};
  auto server = serverContext(o);

  Connection wrong = run(clientContext("wrong.example.net", std::nullopt, std::nullopt, {"h2"}), server);
  ASSERT_TRUE(wrong.bothConnected()) << reasonOf(wrong.client);
  EXPECT_EQ(wrong.client->peerCertificate.commonName(), "wrong.example.net");
  // The per-name context keeps the server's other settings (ALPN here).
  EXPECT_EQ(wrong.client->protocol, std::optional<std::string>("h2"));

  Connection local = run(clientContext("localhost"), server);
  ASSERT_TRUE(local.bothConnected()) << reasonOf(local.client);
  EXPECT_EQ(local.client->peerCertificate.commonName(), "localhost");

  Connection byIp = run(clientContext("127.0.0.1"), server);  // no SNI: the default
  ASSERT_TRUE(byIp.bothConnected()) << reasonOf(byIp.client);
  EXPECT_EQ(byIp.client->peerCertificate.commonName(), "localhost");

  Connection upper = run(clientContext("WRONG.example.net"), server);
  ASSERT_TRUE(upper.bothConnected()) << reasonOf(upper.client);
  EXPECT_EQ(upper.client->peerCertificate.commonName(), "wrong.example.net");
}

// --- session resumption ---

TEST_F(TlsLayerTest, SessionResumption) {
  for (auto version : {TLSVersion::TLSv1_3, TLSVersion::TLSv1_2}) {
    SCOPED_TRACE(toString(version));
    auto server = serverContext();
    auto client = clientContext("localhost", std::nullopt, std::nullopt, {}, maxVersion(version));
    Connection first = run(client, server);
    ASSERT_TRUE(first.bothConnected()) << reasonOf(first.client);
    EXPECT_FALSE(first.client->resumed);
    EXPECT_FALSE(first.server->resumed);
    closeFromClient(first);

    Connection second = run(client, server);
    ASSERT_TRUE(second.bothConnected()) << reasonOf(second.client);
    EXPECT_EQ(second.client->tlsVersion, version == TLSVersion::TLSv1_3 ? "TLSv1.3" : "TLSv1.2");
    EXPECT_TRUE(second.client->resumed);
    EXPECT_TRUE(second.server->resumed);
    // A resumed session still knows the server's certificate.
    EXPECT_EQ(second.client->peerCertificate.commonName(), "localhost");
  }
}

TEST_F(TlsLayerTest, SessionResumptionWithoutClosingFirst) {
  auto server = serverContext();
  auto client = clientContext("localhost");
  Connection first = run(client, server);
  ASSERT_TRUE(first.bothConnected());
  Connection second = run(client, server);
  ASSERT_TRUE(second.bothConnected());
  EXPECT_TRUE(second.client->resumed);
  EXPECT_TRUE(second.server->resumed);
}

TEST_F(TlsLayerTest, NoResumptionWhenTheServerDisablesTickets) {
  CertificateOptions o = identity("test/localhost.pem").options();
  o.enableSessionTickets = false;
  auto server = serverContext(o);
  auto client = clientContext("localhost");
  Connection first = run(client, server);
  ASSERT_TRUE(first.bothConnected());
  closeFromClient(first);
  Connection second = run(client, server);
  ASSERT_TRUE(second.bothConnected());
  EXPECT_EQ(second.client->tlsVersion, "TLSv1.3");
  EXPECT_FALSE(second.client->resumed);
  EXPECT_FALSE(second.server->resumed);
}

TEST_F(TlsLayerTest, NoResumptionWhenTheClientOptsOut) {
  auto server = serverContext();
  ClientTLSExtras e;
  e.resumeSessions = false;
  auto client = clientContext("localhost", std::nullopt, std::nullopt, {}, e);
  Connection first = run(client, server);
  ASSERT_TRUE(first.bothConnected());
  closeFromClient(first);
  Connection second = run(client, server);
  ASSERT_TRUE(second.bothConnected());
  EXPECT_FALSE(second.client->resumed);
}

TEST_F(TlsLayerTest, SessionsAreNotResumedWithADifferentServerKey) {
  auto client = clientContext("localhost");
  Connection first = run(client, serverContext());
  ASSERT_TRUE(first.bothConnected());
  closeFromClient(first);
  // A new server context has new ticket keys: a full handshake, not a failure.
  Connection second = run(client, serverContext());
  ASSERT_TRUE(second.bothConnected()) << reasonOf(second.client);
  EXPECT_FALSE(second.server->resumed);
}

// --- stalled and non-TLS peers ---

TEST_F(TlsLayerTest, HandshakeTimeoutAbortsASilentPeer) {
  Connection c = connect(nullptr, serverContext());  // the client never sends anything
  c.pipe->pump();
  EXPECT_EQ(c.server->connectionMade, 1);
  EXPECT_EQ(reactor_.pendingTimers(), 1u);
  reactor_.advance(std::chrono::milliseconds(9999));
  c.pipe->pump();
  EXPECT_FALSE(c.server->lost.has_value());
  reactor_.advance(std::chrono::milliseconds(1));
  EXPECT_EQ(c.pipe->server().abortConnectionCalls(), 1);
  c.pipe->pump();
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_EQ(c.server->lost->code(), Status::Code::kTimeout) << reasonOf(c.server);
  EXPECT_TRUE(contains(reasonOf(c.server), "TLS handshake timed out")) << reasonOf(c.server);
  EXPECT_EQ(c.server->handshakes, 0);
  ASSERT_TRUE(c.serverHandshake->has_value());
  EXPECT_EQ(c.serverHandshake->value().code(), Status::Code::kTimeout);
}

TEST_F(TlsLayerTest, HandshakeTimeoutIsConfigurableAndCoversAPartialClientHello) {
  CertificateOptions o = identity("test/localhost.pem").options();
  o.handshakeTimeout = std::chrono::milliseconds(2000);
  Connection c = connect(nullptr, serverContext(o));
  // A record header and part of a ClientHello, then nothing.
  c.pipe->server().protocol()->dataReceived(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9));
  c.pipe->pump();
  EXPECT_FALSE(c.server->lost.has_value());
  reactor_.advance(std::chrono::milliseconds(2000));
  c.pipe->pump();
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_EQ(c.server->lost->code(), Status::Code::kTimeout) << reasonOf(c.server);
  EXPECT_TRUE(contains(reasonOf(c.server), "TLS handshake timed out")) << reasonOf(c.server);
}

TEST_F(TlsLayerTest, ClientHandshakeTimeout) {
  ClientTLSExtras e;
  e.handshakeTimeout = std::chrono::milliseconds(500);
  Connection c = connect(clientContext("localhost", std::nullopt, std::nullopt, {}, e), nullptr);
  c.pipe->pump();  // the ClientHello goes nowhere
  reactor_.advance(std::chrono::milliseconds(500));
  c.pipe->pump();
  ASSERT_TRUE(c.client->lost.has_value());
  EXPECT_EQ(c.client->lost->code(), Status::Code::kTimeout) << reasonOf(c.client);
}

class GarbageTest : public TlsLayerTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(GarbageTest, PlainHttpInsteadOfAClientHello) {
  Connection c = connect(nullptr, serverContext(), GetParam());
  // A plain-text client on the TLS port.
  c.pipe->client().write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  c.pipe->pump();
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_EQ(c.server->lost->code(), Status::Code::kTls) << reasonOf(c.server);
  EXPECT_TRUE(contains(reasonOf(c.server), "does not speak TLS")) << reasonOf(c.server);
  EXPECT_EQ(c.server->connectionMade, 1);
  EXPECT_EQ(c.server->handshakes, 0);
  EXPECT_EQ(c.server->received, "");
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Chunks, GarbageTest, ::testing::Values(1, 1 << 20),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return "chunk" + std::to_string(info.param);
                         });

TEST_F(TlsLayerTest, BinaryGarbageFailsTheHandshake) {
  Connection c = connect(nullptr, serverContext());
  c.pipe->client().write(std::string("\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff", 10));
  c.pipe->pump();
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_EQ(c.server->lost->code(), Status::Code::kTls) << reasonOf(c.server);
  EXPECT_TRUE(contains(reasonOf(c.server), "TLS handshake failed")) << reasonOf(c.server);
}

TEST_F(TlsLayerTest, PeerClosingDuringTheHandshakeIsNotClean) {
  Connection c = connect(nullptr, serverContext());
  c.pipe->client().loseConnection();
  c.pipe->pump();
  ASSERT_TRUE(c.server->lost.has_value());
  EXPECT_FALSE(c.server->lost->isCleanClose()) << reasonOf(c.server);
  EXPECT_TRUE(contains(reasonOf(c.server), "during the TLS handshake")) << reasonOf(c.server);
}

// --- flow control ---

TEST_F(TlsLayerTest, PausedApplicationGetsHeldDataAfterResume) {
  Connection c = run(clientContext("localhost"), serverContext());
  ASSERT_TRUE(c.bothConnected());
  App* server = c.serverApp();
  server->transport()->pauseProducing();
  c.clientApp()->transport()->write("held back");
  c.pipe->pump();
  EXPECT_EQ(c.server->received, "");
  server->transport()->resumeProducing();
  c.pipe->pump();
  EXPECT_EQ(c.server->received, "held back");
}

TEST_F(TlsLayerTest, PausingInsideDataReceivedStopsDelivery) {
  // Three records arrive in one read; the server pauses after the first.
  Connection c = run(clientContext("localhost"), serverContext(), {}, [](App& app) {
    app.onData = [](App& a, std::string_view) { a.transport()->pauseProducing(); };
  });
  ASSERT_TRUE(c.bothConnected());
  std::string big(40000, 'p');
  c.clientApp()->transport()->write(big);
  reactor_.runSoon();
  c.pipe->deliverFromClient();
  size_t first = c.server->received.size();
  EXPECT_GT(first, 0u);
  EXPECT_LT(first, big.size());
  c.pipe->pump();
  EXPECT_EQ(c.server->received.size(), first);
  while (c.server->received.size() < big.size()) {
    size_t before = c.server->received.size();
    c.serverApp()->transport()->resumeProducing();
    c.pipe->pump();
    ASSERT_GT(c.server->received.size(), before);
  }
  EXPECT_EQ(c.server->received, big);
}

}  // namespace
}  // namespace whorl::tls
