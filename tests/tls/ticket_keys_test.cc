// Tests for TicketKeys: real OpenSSL handshakes in memory (a BIO pair between a client and a
// server SSL made by their TlsContexts) between separately built server contexts, as two
// instances of a fleet would have. Covers resumption across instances for TLS 1.3 and 1.2, no
// resumption without shared keys, rotation (old tickets resume and are renewed, the oldest key
// goes after kRetainedGenerations more rotations), a broken reload leaving the keys in place,
// SNI contexts, the file format and its errors (which must not leak secrets), the lifetime of
// installed keys, and handshakes on several threads while the keys are reloaded.
#include "framework/tls/ticket_keys.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "tests/tls/tls_pipe.h"

namespace whorl::tls {
namespace {

using test::certPath;
using test::readCertFile;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string hex(const unsigned char* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

// A random key as `openssl rand -hex 80` prints it.
struct Key {
  std::string line;  // 160 hex characters
  std::string name() const { return line.substr(0, 32); }
  std::string secret() const { return line.substr(32); }
};

Key newKey() {
  unsigned char bytes[80];
  EXPECT_EQ(RAND_bytes(bytes, sizeof(bytes)), 1);
  return Key{hex(bytes, sizeof(bytes))};
}

// A file in the test's private temporary directory.
std::string tmpPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(dir ? dir : "/tmp") + "/" + info->test_suite_name() + "." + info->name() +
         "." + name;
}

void writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

std::string lines(const std::vector<Key>& keys) {
  std::string text;
  for (const auto& k : keys) text += k.line + "\n";
  return text;
}

std::shared_ptr<TicketKeys> load(const std::string& path) {
  auto keys = TicketKeys::loadFile(path);
  EXPECT_TRUE(keys.isOk()) << keys.status().message();
  return keys.isOk() ? *keys : nullptr;
}

std::string loadError(const std::string& path) {
  auto keys = TicketKeys::loadFile(path);
  EXPECT_FALSE(keys.isOk()) << path << " loaded " << (keys.isOk() ? (*keys)->keyCount() : 0)
                            << " keys";
  return keys.isOk() ? "" : keys.status().message();
}

// A key (and certificate) file followed by the intermediate, as the servers present it.
PrivateCertificate identity(const std::string& pem) {
  auto pc = PrivateCertificate::loadPEM(readCertFile(pem) + readCertFile("test/intermediate.pem"));
  EXPECT_TRUE(pc.isOk()) << pem << ": " << pc.status().message();
  return pc.isOk() ? *pc : PrivateCertificate();
}

// One server instance: its own context, built from its own options.
std::shared_ptr<TlsContext> serverContext(std::shared_ptr<TicketKeys> keys,
                                          std::vector<PrivateCertificate> sni = {}) {
  CertificateOptions o = identity("test/localhost.pem").options();
  o.sessionTicketKeys = std::move(keys);
  o.sniCertificates = std::move(sni);
  auto ctx = o.context();
  EXPECT_TRUE(ctx.isOk()) << ctx.status().message();
  return ctx.isOk() ? *ctx : nullptr;
}

// A client that keeps no sessions of its own: each test offers the session it chooses.
std::shared_ptr<TlsContext> clientContext(TLSVersion max, const std::string& host = "localhost") {
  auto ca = Certificate::loadPEMFile(certPath("test/ca.pem"));
  EXPECT_TRUE(ca.isOk()) << ca.status().message();
  ClientTLSExtras extras;
  extras.resumeSessions = false;
  extras.lowerMaximumSecurityTo = max;
  auto c = optionsForClientTLS(host, trustRootFromCertificates({*ca}), std::nullopt, {}, extras);
  EXPECT_TRUE(c.isOk()) << c.status().message();
  return c.context();
}

struct SessionFree {
  void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};
using Session = std::shared_ptr<SSL_SESSION>;

struct Outcome {
  bool ok = false;
  std::string error;
  bool clientReused = false;
  bool serverReused = false;
  std::string version;
  Session session;  // the client's session once the handshake and its tickets are done
};

std::string sslError(SSL* ssl, int rc) {
  char buf[256];
  std::string out = "SSL_get_error " + std::to_string(SSL_get_error(ssl, rc));
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof(buf));
    out += std::string("; ") + buf;
  }
  return out;
}

// One connection between `client` and `server`, offering `offer` (may be null) for resumption.
Outcome handshake(const TlsContext& client, const TlsContext& server, const Session& offer) {
  Outcome out;
  std::unique_ptr<VerifyFailure> clientVerify;
  std::unique_ptr<VerifyFailure> serverVerify;
  auto c = client.newSSL(&clientVerify);
  auto s = server.newSSL(&serverVerify);
  if (!c || !s) {
    out.error = "newSSL failed";
    return out;
  }
  SslPtr cs = std::move(*c);
  SslPtr ss = std::move(*s);
  BIO* cb = nullptr;
  BIO* sb = nullptr;
  if (BIO_new_bio_pair(&cb, 0, &sb, 0) != 1) {
    out.error = "BIO_new_bio_pair failed";
    return out;
  }
  SSL_set_bio(cs.get(), cb, cb);
  SSL_set_bio(ss.get(), sb, sb);
  if (offer) SSL_set_session(cs.get(), offer.get());
  bool clientDone = false;
  bool serverDone = false;
  for (int round = 0; round < 100 && !(clientDone && serverDone); ++round) {
    for (auto [ssl, done] : {std::pair{cs.get(), &clientDone}, std::pair{ss.get(), &serverDone}}) {
      if (*done) continue;
      int rc = SSL_do_handshake(ssl);
      if (rc == 1) {
        *done = true;
      } else if (int e = SSL_get_error(ssl, rc); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        out.error = std::string(ssl == cs.get() ? "client: " : "server: ") + sslError(ssl, rc);
        return out;
      }
    }
  }
  if (!clientDone || !serverDone) {
    out.error = "handshake did not finish";
    return out;
  }
  // TLS 1.3 tickets follow the handshake: let the client read them (nothing else is coming).
  char byte;
  int rc = SSL_read(cs.get(), &byte, 1);
  if (rc > 0 || SSL_get_error(cs.get(), rc) != SSL_ERROR_WANT_READ) {
    out.error = "client read: " + sslError(cs.get(), rc);
    return out;
  }
  out.ok = true;
  out.clientReused = SSL_session_reused(cs.get()) == 1;
  out.serverReused = SSL_session_reused(ss.get()) == 1;
  out.version = SSL_get_version(cs.get());
  // A copy, and both sides closed as if cleanly: OpenSSL marks the session of an SSL freed
  // without close_notify not resumable, which would spoil the offered and the returned one.
  out.session = Session(SSL_SESSION_dup(SSL_get0_session(cs.get())), SessionFree());
  SSL_set_shutdown(cs.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_set_shutdown(ss.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  return out;
}

// The name of the key that encrypted the session's ticket: OpenSSL's ticket format (which the
// callback fills) starts with the 16-byte key name.
std::string ticketName(const Session& session) {
  if (!session || SSL_SESSION_has_ticket(session.get()) != 1) return "(no ticket)";
  const unsigned char* tick = nullptr;
  size_t len = 0;
  SSL_SESSION_get0_ticket(session.get(), &tick, &len);
  return len < 16 ? "(short ticket)" : hex(tick, 16);
}

std::string ticketBytes(const Session& session) {
  const unsigned char* tick = nullptr;
  size_t len = 0;
  if (session) SSL_SESSION_get0_ticket(session.get(), &tick, &len);
  return std::string(reinterpret_cast<const char*>(tick), len);
}

const char* versionName(TLSVersion v) { return v == TLSVersion::TLSv1_3 ? "TLSv1.3" : "TLSv1.2"; }

const TLSVersion kVersions[] = {TLSVersion::TLSv1_3, TLSVersion::TLSv1_2};

// --- fleet resumption ---

TEST(TicketKeysTest, SessionsResumeOnAnotherInstanceWithTheSameKeyFile) {
  Key k1 = newKey();
  std::string path = tmpPath("keys");
  writeFile(path, lines({k1}));
  for (TLSVersion v : kVersions) {
    SCOPED_TRACE(toString(v));
    // Two instances: each loads the file and builds its own contexts.
    auto a = serverContext(load(path));
    auto b = serverContext(load(path));
    auto client = clientContext(v);
    ASSERT_TRUE(a && b && client);

    Outcome first = handshake(*client, *a, nullptr);
    ASSERT_TRUE(first.ok) << first.error;
    EXPECT_EQ(first.version, versionName(v));
    EXPECT_FALSE(first.serverReused);
    EXPECT_EQ(ticketName(first.session), k1.name());

    Outcome onB = handshake(*client, *b, first.session);
    ASSERT_TRUE(onB.ok) << onB.error;
    EXPECT_EQ(onB.version, versionName(v));
    EXPECT_TRUE(onB.clientReused);
    EXPECT_TRUE(onB.serverReused);

    // And back: B's session (TLS 1.3 issued a new ticket there) resumes on A.
    Outcome backOnA = handshake(*client, *a, onB.session);
    ASSERT_TRUE(backOnA.ok) << backOnA.error;
    EXPECT_TRUE(backOnA.serverReused);
  }
}

TEST(TicketKeysTest, WithoutSharedKeysSessionsResumeOnlyWhereTheyWereIssued) {
  for (TLSVersion v : kVersions) {
    SCOPED_TRACE(toString(v));
    auto a = serverContext(nullptr);
    auto b = serverContext(nullptr);
    auto client = clientContext(v);
    Outcome first = handshake(*client, *a, nullptr);
    ASSERT_TRUE(first.ok) << first.error;
    // The harness does resume: on A itself.
    Outcome onA = handshake(*client, *a, first.session);
    ASSERT_TRUE(onA.ok) << onA.error;
    EXPECT_TRUE(onA.serverReused);
    // B has its own random keys: a full handshake, not a failure.
    Outcome onB = handshake(*client, *b, first.session);
    ASSERT_TRUE(onB.ok) << onB.error;
    EXPECT_FALSE(onB.clientReused);
    EXPECT_FALSE(onB.serverReused);
  }
}

TEST(TicketKeysTest, AnUnknownKeyNameMeansAFullHandshake) {
  std::string pathA = tmpPath("a");
  std::string pathB = tmpPath("b");
  writeFile(pathA, lines({newKey()}));
  writeFile(pathB, lines({newKey()}));
  for (TLSVersion v : kVersions) {
    SCOPED_TRACE(toString(v));
    auto a = serverContext(load(pathA));
    auto b = serverContext(load(pathB));
    auto client = clientContext(v);
    Outcome first = handshake(*client, *a, nullptr);
    ASSERT_TRUE(first.ok) << first.error;
    Outcome onB = handshake(*client, *b, first.session);
    ASSERT_TRUE(onB.ok) << onB.error;
    EXPECT_FALSE(onB.serverReused);
  }
}

TEST(TicketKeysTest, SniContextsShareTheKeys) {
  std::string path = tmpPath("keys");
  Key k1 = newKey();
  writeFile(path, lines({k1}));
  auto a = serverContext(load(path), {identity("test/wronghost.pem")});
  auto b = serverContext(load(path), {identity("test/wronghost.pem")});
  auto client = clientContext(TLSVersion::TLSv1_3, "wrong.example.net");
  Outcome first = handshake(*client, *a, nullptr);
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(ticketName(first.session), k1.name());
  Outcome onB = handshake(*client, *b, first.session);
  ASSERT_TRUE(onB.ok) << onB.error;
  EXPECT_TRUE(onB.serverReused);
}

// --- rotation ---

TEST(TicketKeysTest, RotationKeepsEarlierKeysForDecryptionAndRenewsTheirTickets) {
  for (TLSVersion v : kVersions) {
    SCOPED_TRACE(toString(v));
    Key k1 = newKey(), k2 = newKey(), k3 = newKey(), k4 = newKey();
    std::string path = tmpPath("keys");
    writeFile(path, lines({k1}));
    auto keys = load(path);
    ASSERT_TRUE(keys);
    auto server = serverContext(keys);
    auto client = clientContext(v);
    Outcome old = handshake(*client, *server, nullptr);
    ASSERT_TRUE(old.ok) << old.error;
    ASSERT_EQ(ticketName(old.session), k1.name());

    // Rotate to K2 (the file no longer mentions K1).
    writeFile(path, lines({k2}));
    ASSERT_TRUE(keys->reload(path).isOk());
    EXPECT_EQ(keys->keyNamesHex(), (std::vector<std::string>{k2.name(), k1.name()}));
    EXPECT_EQ(keys->keyCount(), 2u);

    // The K1 ticket still resumes, and comes back renewed under K2.
    Outcome renewed = handshake(*client, *server, old.session);
    ASSERT_TRUE(renewed.ok) << renewed.error;
    EXPECT_TRUE(renewed.serverReused);
    EXPECT_EQ(ticketName(renewed.session), k2.name());
    // New sessions get K2 tickets.
    Outcome fresh = handshake(*client, *server, nullptr);
    ASSERT_TRUE(fresh.ok) << fresh.error;
    EXPECT_EQ(ticketName(fresh.session), k2.name());

    // Reloading an unchanged file is not a rotation.
    ASSERT_TRUE(keys->reload(path).isOk());
    EXPECT_EQ(keys->keyNamesHex(), (std::vector<std::string>{k2.name(), k1.name()}));

    // Two more rotations: K1 is older than kRetainedGenerations and goes; K2 stays.
    writeFile(path, lines({k3}));
    ASSERT_TRUE(keys->reload(path).isOk());
    EXPECT_EQ(keys->keyNamesHex(),
              (std::vector<std::string>{k3.name(), k2.name(), k1.name()}));
    writeFile(path, lines({k4}));
    ASSERT_TRUE(keys->reload(path).isOk());
    EXPECT_EQ(keys->keyNamesHex(),
              (std::vector<std::string>{k4.name(), k3.name(), k2.name()}));

    Outcome gone = handshake(*client, *server, old.session);
    ASSERT_TRUE(gone.ok) << gone.error;
    EXPECT_FALSE(gone.serverReused);
    EXPECT_EQ(ticketName(gone.session), k4.name());

    Outcome fromK2 = handshake(*client, *server, fresh.session);
    ASSERT_TRUE(fromK2.ok) << fromK2.error;
    EXPECT_TRUE(fromK2.serverReused);
    EXPECT_EQ(ticketName(fromK2.session), k4.name());
  }
}

TEST(TicketKeysTest, Tls12TicketsUnderTheCurrentKeyAreNotRenewed) {
  std::string path = tmpPath("keys");
  writeFile(path, lines({newKey()}));
  auto server = serverContext(load(path));
  auto client = clientContext(TLSVersion::TLSv1_2);
  Outcome first = handshake(*client, *server, nullptr);
  ASSERT_TRUE(first.ok) << first.error;
  Outcome second = handshake(*client, *server, first.session);
  ASSERT_TRUE(second.ok) << second.error;
  EXPECT_TRUE(second.serverReused);
  // No NewSessionTicket: the client still holds the very same ticket.
  EXPECT_EQ(ticketBytes(second.session), ticketBytes(first.session));
}

TEST(TicketKeysTest, ADecryptOnlyLineLetsAFleetRollOutAKeyBeforeUsingIt) {
  Key k1 = newKey(), k2 = newKey();
  std::string pathA = tmpPath("a");
  std::string pathB = tmpPath("b");
  writeFile(pathA, lines({k1, k2}));  // A: K2 distributed, not used yet
  writeFile(pathB, lines({k2, k1}));  // B: already encrypting with K2
  auto keysA = load(pathA);
  auto keysB = load(pathB);
  EXPECT_EQ(keysA->keyNamesHex(), (std::vector<std::string>{k1.name(), k2.name()}));
  for (TLSVersion v : kVersions) {
    SCOPED_TRACE(toString(v));
    auto a = serverContext(keysA);
    auto b = serverContext(keysB);
    auto client = clientContext(v);
    Outcome fromB = handshake(*client, *b, nullptr);
    ASSERT_TRUE(fromB.ok) << fromB.error;
    ASSERT_EQ(ticketName(fromB.session), k2.name());
    Outcome onA = handshake(*client, *a, fromB.session);
    ASSERT_TRUE(onA.ok) << onA.error;
    EXPECT_TRUE(onA.serverReused);
    EXPECT_EQ(ticketName(onA.session), k1.name());  // renewed under A's encryption key
    Outcome onB = handshake(*client, *b, onA.session);
    ASSERT_TRUE(onB.ok) << onB.error;
    EXPECT_TRUE(onB.serverReused);
    EXPECT_EQ(ticketName(onB.session), k2.name());
  }
}

TEST(TicketKeysTest, ABrokenFileOnReloadChangesNothing) {
  Key k1 = newKey();
  std::string path = tmpPath("keys");
  writeFile(path, lines({k1}));
  auto keys = load(path);
  ASSERT_TRUE(keys);
  auto server = serverContext(keys);
  auto client = clientContext(TLSVersion::TLSv1_3);
  Outcome first = handshake(*client, *server, nullptr);
  ASSERT_TRUE(first.ok) << first.error;

  Key k2 = newKey();
  std::string broken = k2.line;
  broken[100] = 'x';
  writeFile(path, "# rotated\n" + broken + "\n");
  Status s = keys->reload(path);
  ASSERT_FALSE(s.isOk());
  EXPECT_TRUE(contains(s.message(), path + ":2:")) << s.message();
  EXPECT_TRUE(contains(s.message(), "not a hex digit")) << s.message();
  EXPECT_EQ(keys->keyNamesHex(), std::vector<std::string>{k1.name()});

  writeFile(path, "");
  EXPECT_FALSE(keys->reload(path).isOk());
  Status missing = keys->reload(path + ".missing");
  ASSERT_FALSE(missing.isOk());
  EXPECT_TRUE(contains(missing.message(), path + ".missing")) << missing.message();
  EXPECT_EQ(keys->keyNamesHex(), std::vector<std::string>{k1.name()});

  Outcome second = handshake(*client, *server, first.session);
  ASSERT_TRUE(second.ok) << second.error;
  EXPECT_TRUE(second.serverReused);
  EXPECT_EQ(ticketName(second.session), k1.name());

  // A fixed file then rotates as usual.
  writeFile(path, lines({k2}));
  ASSERT_TRUE(keys->reload(path).isOk());
  EXPECT_EQ(keys->keyNamesHex(), (std::vector<std::string>{k2.name(), k1.name()}));
}

TEST(TicketKeysTest, AFileCanBringBackARetainedKey) {
  Key k1 = newKey(), k2 = newKey();
  std::string path = tmpPath("keys");
  writeFile(path, lines({k1}));
  auto keys = load(path);
  writeFile(path, lines({k2}));
  ASSERT_TRUE(keys->reload(path).isOk());
  // Rolled back: K1 encrypts again and is not listed twice; K2 is retained.
  writeFile(path, lines({k1}));
  ASSERT_TRUE(keys->reload(path).isOk());
  EXPECT_EQ(keys->keyNamesHex(), (std::vector<std::string>{k1.name(), k2.name()}));
}

// --- ownership ---

TEST(TicketKeysTest, InstalledKeysLiveAsLongAsTheirContexts) {
  std::string path = tmpPath("keys");
  Key k1 = newKey();
  writeFile(path, lines({k1}));
  auto keys = load(path);
  std::weak_ptr<TicketKeys> weak = keys;
  auto server = serverContext(std::move(keys));
  ASSERT_TRUE(server);
  EXPECT_FALSE(weak.expired());  // held by the SSL_CTX alone now
  auto client = clientContext(TLSVersion::TLSv1_3);
  Outcome first = handshake(*client, *server, nullptr);
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(ticketName(first.session), k1.name());
  server.reset();
  EXPECT_TRUE(weak.expired());
}

TEST(TicketKeysTest, InstallingAgainReplacesTheKeys) {
  Key k1 = newKey(), k2 = newKey();
  std::string pathA = tmpPath("a");
  std::string pathB = tmpPath("b");
  writeFile(pathA, lines({k1}));
  writeFile(pathB, lines({k2}));
  auto keysA = load(pathA);
  auto keysB = load(pathB);
  std::weak_ptr<TicketKeys> weakA = keysA;
  auto server = serverContext(keysA);
  keysA.reset();
  ASSERT_TRUE(keysB->install(server->raw()).isOk());
  EXPECT_TRUE(weakA.expired());
  auto client = clientContext(TLSVersion::TLSv1_3);
  Outcome first = handshake(*client, *server, nullptr);
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(ticketName(first.session), k2.name());
}

TEST(TicketKeysTest, DisabledTicketsIgnoreTheKeys) {
  std::string path = tmpPath("keys");
  writeFile(path, lines({newKey()}));
  CertificateOptions o = identity("test/localhost.pem").options();
  o.sessionTicketKeys = load(path);
  o.enableSessionTickets = false;
  auto server = o.context();
  ASSERT_TRUE(server.isOk()) << server.status().message();
  auto client = clientContext(TLSVersion::TLSv1_3);
  Outcome first = handshake(*client, **server, nullptr);
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(ticketName(first.session), "(no ticket)");
}

// --- threads ---

TEST(TicketKeysTest, HandshakesOnSeveralThreadsWhileReloading) {
  Key k1 = newKey(), k2 = newKey();
  std::string path1 = tmpPath("1");
  std::string path2 = tmpPath("2");
  writeFile(path1, lines({k1}));
  writeFile(path2, lines({k2}));
  auto keys = load(path1);
  auto server = serverContext(keys);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> resumed{0};
  std::vector<std::thread> threads;
  constexpr int kThreads = 4;
  constexpr int kRounds = 10;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = clientContext(t % 2 ? TLSVersion::TLSv1_2 : TLSVersion::TLSv1_3);
      for (int i = 0; i < kRounds; ++i) {
        Outcome first = handshake(*client, *server, nullptr);
        // Rotating between K1 and K2 keeps both usable: one in the file, one retained.
        Outcome second = first.ok ? handshake(*client, *server, first.session) : Outcome{};
        if (!first.ok || !second.ok) ++failures;
        if (second.serverReused) ++resumed;
      }
    });
  }
  std::thread reloader([&] {
    for (int i = 0; !stop; ++i) {
      if (!keys->reload(i % 2 ? path1 : path2).isOk()) ++failures;
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  stop = true;
  reloader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(resumed.load(), kThreads * kRounds);
}

// --- the file format ---

TEST(TicketKeysFileTest, CommentsBlankLinesSpacesCrlfAndUppercaseAreFine) {
  Key k1 = newKey(), k2 = newKey();
  std::string upper = k1.line;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string path = tmpPath("keys");
  writeFile(path, "# session ticket keys\r\n\r\n  " + upper + " \t\r\n   # the previous key\n\n" +
                      k2.line);  // no final newline
  auto keys = load(path);
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->keyCount(), 2u);
  EXPECT_EQ(keys->keyNamesHex(), (std::vector<std::string>{k1.name(), k2.name()}));
}

TEST(TicketKeysFileTest, ARaw80ByteBinaryFileIsOneKey) {
  unsigned char bytes[80];
  ASSERT_EQ(RAND_bytes(bytes, sizeof(bytes)), 1);
  bytes[40] = 0;  // certainly binary
  std::string path = tmpPath("key.bin");
  writeFile(path, std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
  auto keys = load(path);
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->keyCount(), 1u);
  EXPECT_EQ(keys->keyNamesHex(), std::vector<std::string>{hex(bytes, 16)});

  // And it encrypts tickets.
  auto server = serverContext(keys);
  auto client = clientContext(TLSVersion::TLSv1_3);
  Outcome first = handshake(*client, *server, nullptr);
  ASSERT_TRUE(first.ok) << first.error;
  EXPECT_EQ(ticketName(first.session), hex(bytes, 16));
}

TEST(TicketKeysFileTest, BinaryOfAnotherSizeIsRejected) {
  std::string data(48, '\x01');
  std::string path = tmpPath("key.bin");
  writeFile(path, data);
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "48 bytes")) << msg;
}

TEST(TicketKeysFileTest, AShortLineNamesTheFileTheLineAndTheLengthButNoSecret) {
  Key k1 = newKey(), k2 = newKey();
  std::string path = tmpPath("keys");
  writeFile(path, k1.line + "\n# next\n" + k2.line.substr(0, 158) + "\n");
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, path + ":3:")) << msg;
  EXPECT_TRUE(contains(msg, "158")) << msg;
  EXPECT_TRUE(contains(msg, "160")) << msg;
  EXPECT_FALSE(contains(msg, k2.secret().substr(0, 16))) << msg;
  EXPECT_FALSE(contains(msg, k1.secret().substr(0, 16))) << msg;
}

TEST(TicketKeysFileTest, ALongLineIsRejected) {
  std::string path = tmpPath("keys");
  writeFile(path, newKey().line + "00\n");
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, path + ":1:")) << msg;
  EXPECT_TRUE(contains(msg, "162")) << msg;
}

TEST(TicketKeysFileTest, ANonHexCharacterNamesItsColumnButNoSecret) {
  Key k1 = newKey();
  std::string line = k1.line;
  line[50] = 'g';
  std::string path = tmpPath("keys");
  writeFile(path, line + "\n");
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, path + ":1:")) << msg;
  EXPECT_TRUE(contains(msg, "character 51")) << msg;
  EXPECT_TRUE(contains(msg, "not a hex digit")) << msg;
  EXPECT_FALSE(contains(msg, k1.secret().substr(0, 16))) << msg;
  EXPECT_FALSE(contains(msg, k1.secret().substr(20, 16))) << msg;
}

TEST(TicketKeysFileTest, AnInlineCommentIsNotAllowed) {
  std::string path = tmpPath("keys");
  writeFile(path, newKey().line + " # current\n");
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, "character 161")) << msg;
}

TEST(TicketKeysFileTest, EmptyOrCommentOnlyFilesHaveNoKey) {
  std::string path = tmpPath("keys");
  writeFile(path, "");
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "no key")) << msg;
  writeFile(path, "# keys go here\n\n   \n");
  msg = loadError(path);
  EXPECT_TRUE(contains(msg, "no key")) << msg;
}

TEST(TicketKeysFileTest, An80ByteTextFileIsReadAsText) {
  // Exactly 80 bytes, but text: never taken for a binary key.
  std::string path = tmpPath("keys");
  writeFile(path, newKey().line.substr(0, 79) + "\n");
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, path + ":1:")) << msg;
  EXPECT_TRUE(contains(msg, "79 hex characters")) << msg;
}

TEST(TicketKeysFileTest, DuplicateKeyNamesAreRejected) {
  Key k1 = newKey(), other = newKey();
  Key sameName{k1.name() + other.secret()};
  std::string path = tmpPath("keys");
  writeFile(path, lines({k1, newKey(), sameName}));
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, path + ":3:")) << msg;
  EXPECT_TRUE(contains(msg, "duplicate key name " + k1.name())) << msg;
  EXPECT_TRUE(contains(msg, "line 1")) << msg;
  EXPECT_FALSE(contains(msg, other.secret().substr(0, 16))) << msg;
}

TEST(TicketKeysFileTest, UnreadableFilesSayWhy) {
  std::string path = tmpPath("missing");
  std::string msg = loadError(path);
  EXPECT_TRUE(contains(msg, path)) << msg;
  EXPECT_TRUE(contains(msg, "No such file or directory")) << msg;

  std::string dir = tmpPath("dir");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  msg = loadError(dir);
  EXPECT_TRUE(contains(msg, dir)) << msg;
  EXPECT_TRUE(contains(msg, "Is a directory")) << msg;
}

}  // namespace
}  // namespace whorl::tls
