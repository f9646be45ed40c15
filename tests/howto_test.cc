// The code of examples/README.md (the TLS howto) that no example program shows: the TLS protocol
// options (DH parameters, versions, ciphers, ALPN), startTLSDeferred, Deferreds and coroutines,
// react() exit statuses, connectProtocol and ProtocolHandle, Sharded<T>, TimeoutMixin and the stop
// notice. Each region between "// [snippet NAME]" and "// [end snippet]" is copied verbatim into
// the howto (tools/check_snippets.py, run by //tests:docs_snippets_test, keeps them equal); the
// tests around the regions run that code and check that it does what the howto says. TLS option
// handshakes run over the in-memory pipe of tests/tls/tls_pipe.h, connections over loopback.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/whorl.h"
#include "tests/fake_transport.h"
#include "tests/tls/tls_pipe.h"

namespace {

using namespace whorl;  // as a program does
using namespace std::chrono_literals;

// --- helpers (not in the howto) ------------------------------------------------------------------

tls::PrivateCertificate loadIdentity(const std::string& path) {
  auto certificate = tls::PrivateCertificate::loadPEMFile(findDataFile(path));
  EXPECT_TRUE(certificate.isOk()) << certificate.status().message();
  return certificate.isOk() ? *certificate : tls::PrivateCertificate();
}

tls::Certificate loadAuthority(const std::string& path) {
  auto authority = tls::Certificate::loadPEMFile(findDataFile(path));
  EXPECT_TRUE(authority.isOk()) << authority.status().message();
  return authority.isOk() ? *authority : tls::Certificate();
}

// Client options for "example.com" (certs/server.pem), optionally capped at a version.
tls::TLSOptions exampleClient(std::optional<tls::TLSVersion> maximum = std::nullopt) {
  tls::ClientTLSExtras extras;
  extras.lowerMaximumSecurityTo = maximum;
  return tls::optionsForClientTLS("example.com", loadAuthority("certs/public.pem"), std::nullopt,
                                  {}, extras);
}

// What the client of an in-memory handshake saw.
struct Negotiated {
  Status status = Status(Status::Code::kTimeout, "no handshake result");
  std::string version;
  std::string cipher;
  std::optional<std::string> protocol;
};

Negotiated handshake(const tls::TLSOptions& client, const tls::TLSOptions& server) {
  Negotiated n;
  if (!client || !server) {
    n.status = !client ? client.status() : server.status();
    return n;
  }
  test::FakeReactor reactor;
  test::Pipe pipe(reactor, 1 << 20);
  auto log = std::make_shared<test::AppLog>();
  auto result = std::make_shared<std::optional<Status>>();
  tls::TlsLayerOptions layerOptions;
  layerOptions.onHandshake = [result](Status s) { *result = std::move(s); };
  pipe.connect(
      std::make_unique<tls::TlsLayer>(client.context(), std::make_unique<test::App>(log),
                                      layerOptions),
      std::make_unique<tls::TlsLayer>(
          server.context(), std::make_unique<test::App>(std::make_shared<test::AppLog>())));
  pipe.pump();
  if (result->has_value()) n.status = **result;
  n.version = log->tlsVersion;
  n.cipher = log->cipher;
  n.protocol = log->protocol;
  return n;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// react() options for tests: no pinning, few receive buffers.
ReactOptions testReact(int shards = 1) {
  ReactOptions o;
  o.runtime.shards = shards;
  o.runtime.pinThreads = false;
  o.runtime.buffers.count = 16;
  o.program = "howto_test";
  return o;
}

// A listening port on 127.0.0.1 (any free port), once every shard accepts. The endpoint is a
// named local: GCC 12 destroys a temporary TCP4ServerEndpoint inside a co_await expression wrongly
// (its TcpServerOptions argument), which ASan reports as a free of a bad pointer.
Deferred<std::unique_ptr<ListeningPort>> listenLocal(Shard& reactor,
                                                     std::shared_ptr<Factory> factory) {
  TCP4ServerEndpoint endpoint(reactor, 0, {.interface = "127.0.0.1"});
  return endpoint.listenDeferred(std::move(factory));
}

// --- TLS protocol options ------------------------------------------------------------------------

// [snippet dh]
tls::TLSOptions withDhParameters(const tls::PrivateCertificate& certificate) {
  auto dhParams = tls::DiffieHellmanParameters::fromFile(findDataFile("certs/test/dh2048.pem"));
  if (!dhParams) return dhParams.status();
  tls::CertificateOptions options = certificate.options();
  options.dhParameters = *dhParams;
  return options;
}
// [end snippet]

TEST(HowtoOptions, DhParametersEnableFiniteFieldDhe) {
  // Finite-field DHE: an RSA certificate, TLS 1.2, a DHE-RSA suite.
  tls::PrivateCertificate rsa = loadIdentity("certs/test/localhost-rsa.pem");
  auto roots = tls::trustRootFromPath(findDataFile("certs/test/ca-bundle.pem"));
  ASSERT_TRUE(roots.isOk()) << roots.status().message();
  tls::ClientTLSExtras extras;
  extras.lowerMaximumSecurityTo = tls::TLSVersion::TLSv1_2;
  extras.acceptableCiphers =
      *tls::AcceptableCiphers::fromOpenSSLCipherString("DHE-RSA-AES128-GCM-SHA256", "");
  tls::TLSOptions client = tls::optionsForClientTLS("localhost", *roots, std::nullopt, {}, extras);

  tls::TLSOptions server = withDhParameters(rsa);
  ASSERT_TRUE(server.isOk()) << server.status().message();
  Negotiated n = handshake(client, server);
  ASSERT_TRUE(n.status.isOk()) << n.status.message();
  EXPECT_EQ(n.version, "TLSv1.2");
  EXPECT_EQ(n.cipher, "DHE-RSA-AES128-GCM-SHA256");

  // Without the parameters there is no DHE to agree on.
  Negotiated without = handshake(client, tls::TLSOptions(rsa.options()));
  EXPECT_EQ(without.status.code(), Status::Code::kTls) << without.status.message();
}

TEST(HowtoOptions, RaiseMinimumTo) {
  tls::PrivateCertificate certificate = loadIdentity("certs/server.pem");
  // [snippet raise-minimum]
  tls::CertificateOptions options = certificate.options();
  options.raiseMinimumTo = tls::TLSVersion::TLSv1_3;
  // [end snippet]
  auto range = options.versionRange();
  ASSERT_TRUE(range.isOk()) << range.status().message();
  EXPECT_EQ(range->first, tls::TLSVersion::TLSv1_3);
  EXPECT_EQ(range->second, tls::TLSVersion::TLSv1_3);
  tls::TLSOptions server = options;
  EXPECT_EQ(handshake(exampleClient(), server).version, "TLSv1.3");
  tls::Certificate authority = loadAuthority("certs/public.pem");
  // [snippet client-versions]
  tls::ClientTLSExtras extras;
  extras.lowerMaximumSecurityTo = tls::TLSVersion::TLSv1_2;
  tls::TLSOptions client =
      tls::optionsForClientTLS("example.com", authority, std::nullopt, {}, extras);
  // [end snippet]
  Negotiated old = handshake(client, server);
  EXPECT_EQ(old.status.code(), Status::Code::kTls);
  EXPECT_EQ(old.status.message(), "TLS handshake failed: tlsv1 alert protocol version");

  // raiseMinimumTo never lowers the default floor (TLS 1.2).
  options.raiseMinimumTo = tls::TLSVersion::TLSv1_0;
  EXPECT_EQ(options.versionRange()->first, tls::TLSVersion::TLSv1_2);
}

TEST(HowtoOptions, AnExactVersionRangeWithAnInclusiveMaximum) {
  tls::PrivateCertificate certificate = loadIdentity("certs/server.pem");
  // [snippet version-range]
  tls::CertificateOptions options = certificate.options();
  options.insecurelyLowerMinimumTo = tls::TLSVersion::TLSv1_0;
  options.lowerMaximumSecurityTo = tls::TLSVersion::TLSv1_2;  // inclusive: 1.2 is allowed
  // [end snippet]
  auto range = options.versionRange();
  ASSERT_TRUE(range.isOk()) << range.status().message();
  EXPECT_EQ(range->first, tls::TLSVersion::TLSv1_0);
  EXPECT_EQ(range->second, tls::TLSVersion::TLSv1_2);
  Negotiated n = handshake(exampleClient(), tls::TLSOptions(options));
  ASSERT_TRUE(n.status.isOk()) << n.status.message();
  EXPECT_EQ(n.version, "TLSv1.2");

  // Clients that speak only TLS 1.0 or only TLS 1.1 get it.
  for (auto [version, name] : {std::pair(tls::TLSVersion::TLSv1_0, "TLSv1"),
                               std::pair(tls::TLSVersion::TLSv1_1, "TLSv1.1")}) {
    tls::ClientTLSExtras only;
    only.insecurelyLowerMinimumTo = version;
    only.lowerMaximumSecurityTo = version;
    Negotiated old =
        handshake(tls::optionsForClientTLS("example.com", loadAuthority("certs/public.pem"),
                                           std::nullopt, {}, only),
                  tls::TLSOptions(options));
    EXPECT_TRUE(old.status.isOk()) << old.status.message();
    EXPECT_EQ(old.version, name);
  }

  // The errors the howto names.
  options.raiseMinimumTo = tls::TLSVersion::TLSv1_3;
  EXPECT_EQ(options.versionRange().status().message(),
            "raiseMinimumTo and insecurelyLowerMinimumTo cannot be used together");
  tls::CertificateOptions ssl3 = certificate.options();
  ssl3.insecurelyLowerMinimumTo = tls::TLSVersion::SSLv3;
  tls::TLSOptions refused = ssl3;
  EXPECT_FALSE(refused.isOk());
  EXPECT_TRUE(contains(refused.status().message(),
                       "SSLv3 was requested but this OpenSSL is built without it (no-ssl3)"))
      << refused.status().message();
}

// [snippet ciphers]
tls::TLSOptions withCiphers(const tls::PrivateCertificate& certificate) {
  auto ciphers = tls::AcceptableCiphers::fromOpenSSLCipherString(
      "ECDHE-ECDSA-AES256-GCM-SHA384",  // TLS 1.2 and below: an OpenSSL cipher string
      "TLS_AES_256_GCM_SHA384");        // TLS 1.3: ciphersuites
  if (!ciphers) return ciphers.status();
  tls::CertificateOptions options = certificate.options();
  options.acceptableCiphers = *ciphers;
  return options;
}
// [end snippet]

TEST(HowtoOptions, AcceptableCiphers) {
  tls::TLSOptions server = withCiphers(loadIdentity("certs/server.pem"));
  ASSERT_TRUE(server.isOk()) << server.status().message();
  Negotiated n13 = handshake(exampleClient(), server);
  ASSERT_TRUE(n13.status.isOk()) << n13.status.message();
  EXPECT_EQ(n13.cipher, "TLS_AES_256_GCM_SHA384");
  Negotiated n12 = handshake(exampleClient(tls::TLSVersion::TLSv1_2), server);
  ASSERT_TRUE(n12.status.isOk()) << n12.status.message();
  EXPECT_EQ(n12.cipher, "ECDHE-ECDSA-AES256-GCM-SHA384");

  auto none = tls::AcceptableCiphers::fromOpenSSLCipherString("NO-SUCH-CIPHER", "");
  EXPECT_EQ(none.status().message(),
            "the cipher selection 'NO-SUCH-CIPHER' / '' matches no cipher this OpenSSL supports");
}

TEST(HowtoOptions, AlpnAndNpn) {
  tls::PrivateCertificate certificate = loadIdentity("certs/server.pem");
  tls::Certificate authority = loadAuthority("certs/public.pem");
  // [snippet alpn-server]
  tls::CertificateOptions options = certificate.options();
  options.acceptableProtocols = {"h2", "http/1.1"};
  // [end snippet]
  // [snippet alpn-client]
  tls::TLSOptions client =
      tls::optionsForClientTLS("example.com", authority, std::nullopt, {"h2", "http/1.1"});
  // [end snippet]
  Negotiated n = handshake(client, tls::TLSOptions(options));
  ASSERT_TRUE(n.status.isOk()) << n.status.message();
  EXPECT_EQ(n.protocol, "h2");
  // The server chooses, from its own list first.
  Negotiated one = handshake(
      tls::optionsForClientTLS("example.com", authority, std::nullopt, {"http/1.1", "h2"}),
      tls::TLSOptions(options));
  EXPECT_EQ(one.protocol, "h2");
  // A client that offers nothing: no protocol.
  Negotiated plain = handshake(exampleClient(), tls::TLSOptions(options));
  ASSERT_TRUE(plain.status.isOk()) << plain.status.message();
  EXPECT_FALSE(plain.protocol.has_value());
  EXPECT_EQ(tls::protocolNegotiationMechanisms() & tls::kALPN, tls::kALPN);
}

// --- Deferreds -----------------------------------------------------------------------------------

TEST(HowtoDeferred, ACallbackChain) {
  test::FakeReactor reactor;
  // [snippet deferred-chain]
  Deferred<int> answer = deferLater(reactor, 2s, [] { return 42; })
                             .addCallback([](int n) { return n + 1; })
                             .addErrback([](const Status&) { return -1; })
                             .addTimeout(5s, reactor);
  // [end snippet]
  int got = 0;
  answer.addCallback([&](int n) { got = n; });
  reactor.advance(1s);
  EXPECT_EQ(got, 0);
  reactor.advance(1s);
  EXPECT_EQ(got, 43);
  EXPECT_EQ(reactor.pendingTimers(), 0u);  // the timeout's timer is gone too

  // Too slow: the timeout cancels the work (its timer) and fails with kTimeout.
  Deferred<int> late = deferLater(reactor, 10s, [] { return 42; }).addTimeout(5s, reactor);
  Status why;
  late.addErrback([&](const Status& s) {
    why = s;
    return -1;
  });
  reactor.advance(5s);
  EXPECT_EQ(why.code(), Status::Code::kTimeout);
  EXPECT_EQ(why.message(), "timed out after 5 s");
  EXPECT_EQ(reactor.pendingTimers(), 0u);
}

TEST(HowtoDeferred, FiringAndFailing) {
  // [snippet deferred-fire]
  Deferred<std::string> greeting;  // fired later by whoever holds it
  Deferred<size_t> length = greeting.addCallback([](std::string s) -> Result<size_t> {
    if (s.empty()) return Status::invalidArgument("empty greeting");  // fails the chain
    return s.size();
  });
  greeting.callback("hello");  // or greeting.errback(Status(...))
  // [end snippet]
  Result<size_t> got = Status(Status::Code::kAborted, "not fired");
  length.addBoth([&](Result<size_t> r) { got = std::move(r); });
  ASSERT_TRUE(got.isOk()) << got.status().message();
  EXPECT_EQ(*got, 5u);

  Deferred<std::string> empty;
  Result<size_t> failed = size_t{0};
  empty
      .addCallback([](std::string s) -> Result<size_t> {
        if (s.empty()) return Status::invalidArgument("empty greeting");
        return s.size();
      })
      .addBoth([&](Result<size_t> r) { failed = std::move(r); });
  empty.callback("");
  EXPECT_EQ(failed.status().message(), "empty greeting");
}

TEST(HowtoDeferred, Cancel) {
  test::FakeReactor reactor;
  // [snippet deferred-cancel]
  Deferred<int> later = deferLater(reactor, 10s, [] { return 1; });
  later.cancel();  // cancels the timer, then fails `later` with kCancelled
  // [end snippet]
  EXPECT_EQ(reactor.pendingTimers(), 0u);
  Status why;
  later.addErrback([&](const Status& s) {
    why = s;
    return 0;
  });
  EXPECT_EQ(why.code(), Status::Code::kCancelled);
}

TEST(HowtoDeferred, GatherResults) {
  test::FakeReactor reactor;
  // [snippet gather]
  std::vector<Deferred<int>> lookups;
  lookups.push_back(deferLater(reactor, 1s, [] { return 1; }));
  lookups.push_back(deferLater(reactor, 2s, [] { return 2; }));
  Deferred<std::vector<int>> both = gatherResults(std::move(lookups));  // {1, 2}
  // [end snippet]
  std::vector<int> got;
  both.addCallback([&](std::vector<int> v) { got = std::move(v); });
  reactor.advance(2s);
  EXPECT_EQ(got, (std::vector<int>{1, 2}));
}

TEST(HowtoDeferred, AnUnhandledFailureIsLogged) {
  testing::internal::CaptureStderr();
  // [snippet unhandled]
  {
    Deferred<int> d;
    d.addCallback([](int n) { return n * 2; });  // nothing handles a failure after this
    d.errback(Status(Status::Code::kRefused, "nobody listens"));
  }  // freed here: "Unhandled error in Deferred: refused: nobody listens" is logged
  // [end snippet]
  std::string log = testing::internal::GetCapturedStderr();
  // <time> ERROR [main] Unhandled error in Deferred: refused: nobody listens
  EXPECT_TRUE(
      contains(log, "Z ERROR [main] Unhandled error in Deferred: refused: nobody listens\n"))
      << log;
}

// --- coroutines, connectProtocol, ProtocolHandle, react ------------------------------------------

// [snippet line-client]
// Hands each received line to whoever awaits nextLine().
class LineClient : public LineReceiver {
 public:
  Deferred<std::string> nextLine() {
    Deferred<std::string> line;
    if (!lines_.empty()) {
      line.callback(std::move(lines_.front()));
      lines_.erase(lines_.begin());
    } else if (lost_) {
      line.errback(*lost_);
    } else {
      waiting_.push_back(line);
    }
    return line;
  }
  void lineReceived(std::string_view line) override {
    if (waiting_.empty()) {
      lines_.emplace_back(line);
      return;
    }
    Deferred<std::string> next = std::move(waiting_.front());
    waiting_.erase(waiting_.begin());
    next.callback(std::string(line));
  }
  void connectionLost(const Status& reason) override {
    lost_ = reason;
    for (auto& waiter : std::exchange(waiting_, {})) waiter.errback(reason);
  }

 private:
  std::vector<std::string> lines_;
  std::vector<Deferred<std::string>> waiting_;
  std::optional<Status> lost_;
};
// [end snippet]

// Says hello, then echoes lines.
class Hello : public LineReceiver {
  void connectionMade() override { sendLine("hello"); }
  void lineReceived(std::string_view line) override { sendLine(line); }
};

// [snippet coroutine]
Deferred<std::string> firstLine(Shard& reactor, std::string host, uint16_t port) {
  TCP4ClientEndpoint endpoint(reactor, host, port);
  WHORL_CO_TRY(auto client, co_await connectProtocol<LineClient>(endpoint));
  Result<std::string> line = co_await client->nextLine();
  if (!line) co_return line.status();  // fails the Deferred that firstLine returned
  client->transport()->loseConnection();
  co_return *line;
}
// [end snippet]

TEST(HowtoCoroutine, AwaitsAConnectionAndALine) {
  std::string got;
  int rc = react(
      [&](Shard& reactor) -> Deferred<void> {
        // [snippet listen-deferred]
        TCP4ServerEndpoint endpoint(reactor, 0, {.interface = "127.0.0.1"});  // 0: any free port
        WHORL_CO_TRY(auto port, co_await endpoint.listenDeferred(Factory::forProtocol<Hello>()));
        // [end snippet]
        WHORL_CO_TRY(got, co_await firstLine(reactor, "127.0.0.1", port->getHost().port()));
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(got, "hello");
}

TEST(HowtoCoroutine, ReactExitStatuses) {
  EXPECT_EQ(react([](Shard&) { return succeed(); }, testReact()), 0);
  EXPECT_EQ(react([](Shard&) { return succeed(3); }, testReact()), 3);

  testing::internal::CaptureStderr();
  // [snippet react-exit]
  int status = react(
      [](Shard& reactor) -> Deferred<int> {
        WHORL_CO_TRY(auto line, co_await firstLine(reactor, "127.0.0.1", 1));  // nobody listens
        co_return line == "hello" ? 0 : 2;
      },
      {.program = "howto"});
  // [end snippet]
  EXPECT_EQ(status, 1);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "howto: connect to 127.0.0.1:1: Connection refused\n");
}

TEST(HowtoCoroutine, AHandleNeverDangles) {
  bool timerRan = false;
  bool sawNull = false;
  int rc = react(
      [&](Shard& reactor) -> Deferred<void> {
        WHORL_CO_TRY(auto port, co_await listenLocal(reactor, Factory::forProtocol<Hello>()));
        WHORL_CO_TRY(auto client, co_await connectProtocol<LineClient>(TCP4ClientEndpoint(
                                      reactor, "127.0.0.1", port->getHost().port())));
        Deferred<void> timerDone;
        reactor.callLater(100ms, [&, timerDone]() mutable {
          timerRan = true;
          timerDone.callback();
        });
        // [snippet handle]
        ProtocolHandle<LineClient> handle = client;
        reactor.callLater(50ms, [handle] {
          if (LineClient* c = handle.get()) c->sendLine("still there?");  // null once it is gone
        });
        handle->transport()->loseConnection();
        Status why = co_await handle.whenLost();  // ok for a clean close, else the reason
        // [end snippet]
        sawNull = handle.get() == nullptr && handle.lost();
        co_await timerDone;
        co_return why;  // a clean close: react() returns 0
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(timerRan);
  EXPECT_TRUE(sawNull);
}

// Accepts and says nothing: a TLS client's handshake never completes.
class Silent : public Protocol {};

TEST(HowtoCoroutine, ATimeoutCancelsAConnectAttempt) {
  Status got;
  int rc = react(
      [&](Shard& reactor) -> Deferred<void> {
        WHORL_CO_TRY(auto port, co_await listenLocal(reactor, Factory::forProtocol<Silent>()));
        uint16_t number = port->getHost().port();
        tls::TLSOptions options = exampleClient();
        // [snippet connect-timeout]
        SSL4ClientEndpoint endpoint(reactor, "127.0.0.1", number, options);
        auto client = co_await connectProtocol<LineClient>(endpoint).addTimeout(500ms, reactor);
        // [end snippet]
        got = client.status();
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(got.code(), Status::Code::kTimeout);
  EXPECT_EQ(got.message(), "timed out after 500 ms");
}

// --- startTLS as a Deferred ----------------------------------------------------------------------

// The seed's STARTTLS server, recording what it receives and whether it was encrypted.
class StartTlsServer : public LineReceiver {
 public:
  StartTlsServer(tls::TLSOptions options, std::vector<std::string>* log)
      : options_(std::move(options)), log_(log) {}
  void lineReceived(std::string_view line) override {
    log_->push_back(std::string(line) + (transport()->isTLS() ? " (tls)" : " (plain)"));
    if (line == "STARTTLS") {
      sendLine("READY");
      EXPECT_TRUE(transport()->startTLS(options_).isOk());
    }
  }

 private:
  tls::TLSOptions options_;
  std::vector<std::string>* log_;
};

// [snippet starttls-deferred]
Deferred<void> secureGreeting(ProtocolHandle<LineClient> client, tls::TLSOptions options) {
  client->sendLine("STARTTLS");
  WHORL_CO_TRY(std::string go, co_await client->nextLine());
  if (go != "READY") co_return Status::invalidArgument("expected READY, got " + go);
  Status secured = co_await client->transport()->startTLSDeferred(options);
  if (!secured.isOk()) co_return secured;  // the handshake's reason
  client->sendLine("secure text");
  client->transport()->loseConnection();
  co_return co_await client.whenLost();
}
// [end snippet]

// Connects to a StartTlsServer on loopback and runs secureGreeting with `clientOptions`.
Deferred<void> startTlsSession(Shard& reactor, tls::TLSOptions clientOptions,
                               std::vector<std::string>* serverLog) {
  tls::TLSOptions serverOptions = loadIdentity("certs/server.pem").options();
  WHORL_CO_TRY(auto port, co_await listenLocal(reactor, Factory::forProtocol<StartTlsServer>(
                                                            serverOptions, serverLog)));
  TCP4ClientEndpoint endpoint(reactor, "127.0.0.1", port->getHost().port());
  WHORL_CO_TRY(auto client, co_await connectProtocol<LineClient>(endpoint));
  co_return co_await secureGreeting(client, clientOptions);
}

TEST(HowtoStartTLS, TheDeferredFormFiresAfterTheHandshake) {
  std::vector<std::string> serverLog;
  int rc =
      react([&](Shard& reactor) { return startTlsSession(reactor, exampleClient(), &serverLog); },
            testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(serverLog, (std::vector<std::string>{"STARTTLS (plain)", "secure text (tls)"}));

  // A client that wants another name: the Deferred fails with the handshake's reason.
  serverLog.clear();
  testing::internal::CaptureStderr();
  int bad = react(
      [&](Shard& reactor) {
        return startTlsSession(
            reactor, tls::optionsForClientTLS("example.org", loadAuthority("certs/public.pem")),
            &serverLog);
      },
      testReact());
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(bad, 1);
  EXPECT_TRUE(contains(err,
                       "howto_test: TLS handshake failed: certificate verify failed: hostname "
                       "mismatch: wanted example.org, got DNS:example.com"))
      << err;
  EXPECT_EQ(serverLog, (std::vector<std::string>{"STARTTLS (plain)"}));
}

// --- Sharded<T> ----------------------------------------------------------------------------------

// [snippet sharded]
struct Hits {
  int count = 0;
};

Deferred<int> countEverywhere(Sharded<Hits>& hits) {
  hits.local().count += 1;  // this shard's instance: no lock
  Status all = co_await hits.invokeOnAll([](Hits& h) { h.count += 10; });  // each on its thread
  if (!all.isOk()) co_return all;  // e.g. kUnavailable: a shard's mailbox was full
  co_return co_await hits.mapReduce([](Hits& h) { return h.count; }, 0, std::plus<>());
}
// [end snippet]

TEST(HowtoSharded, OneInstancePerShard) {
  ReactOptions options = testReact(2);
  // [snippet sharded-react]
  std::unique_ptr<Sharded<Hits>> hits;  // outlives the runtime
  int total = react(
      [&](Shard& reactor) -> Deferred<int> {
        hits = std::make_unique<Sharded<Hits>>(reactor);  // one Hits per shard
        return countEverywhere(*hits);
      },
      options);
  // [end snippet]
  EXPECT_EQ(total, 21);  // shard 0: 1 + 10, shard 1: 10
  ASSERT_NE(hits, nullptr);
  EXPECT_EQ(hits->shardCount(), 2);
}

TEST(HowtoSharded, InvokeOnAnswersOnTheCallingShard) {
  std::unique_ptr<Sharded<Hits>> hits;
  int rc = react(
      [&](Shard& reactor) -> Deferred<int> {
        hits = std::make_unique<Sharded<Hits>>(reactor);
        // [snippet invoke-on]
        Result<int> where = co_await hits->invokeOn(1, [](Hits& h) {
          h.count += 1;
          return Shard::current()->index();  // runs on shard 1's thread
        });
        // [end snippet]
        co_return where ? *where : -1;
      },
      testReact(2));
  EXPECT_EQ(rc, 1);
}

// --- TimeoutMixin and the stop notice ------------------------------------------------------------

// [snippet timeout-mixin]
class Chat : public TimeoutMixin<LineReceiver> {
 public:
  void connectionMade() override { setTimeout(30s); }
  void lineReceived(std::string_view line) override {
    resetTimeout();  // activity: the 30 s start again
    sendLine(line);
  }
  void timeoutConnection() override {
    sendLine("idle for too long, bye");
    TimeoutMixin::timeoutConnection();  // logs why and calls loseConnection()
  }
};
// [end snippet]

TEST(HowtoTimeoutMixin, ClosesAfterThirtyQuietSeconds) {
  test::FakeReactor reactor;
  test::FakeTransport transport(reactor);
  Chat chat;
  transport.connect(&chat);
  reactor.advance(20s);
  chat.dataReceived("hi\r\n");
  reactor.advance(29s);  // 49 s in, 29 s after the line
  EXPECT_EQ(transport.loseConnectionCalls(), 0);
  EXPECT_FALSE(chat.timedOut());
  reactor.advance(1s);
  EXPECT_EQ(transport.loseConnectionCalls(), 1);
  EXPECT_TRUE(chat.timedOut());
  EXPECT_EQ(transport.written(), "hi\r\nidle for too long, bye\r\n");
}

// [snippet stop-notice]
class Session : public LineReceiver {
 public:
  void connectionMade() override { sendLine("welcome"); }
  void lineReceived(std::string_view line) override { sendLine(line); }
  void stopRequested(api::Reactor::Clock::time_point) override {
    sendLine("server restarting, bye");
    transport()->loseConnection();  // what was written goes out first
  }
};
// [end snippet]

TEST(HowtoStopNotice, AGoodbyeBeforeTheDrainCloses) {
  std::vector<std::string> lines;
  Status lost(Status::Code::kAborted, "not set");
  bool stopping = false;
  int rc = react(
      [&](Shard& reactor) -> Deferred<void> {
        WHORL_CO_TRY(auto port, co_await listenLocal(reactor, Factory::forProtocol<Session>()));
        WHORL_CO_TRY(auto client, co_await connectProtocol<LineClient>(TCP4ClientEndpoint(
                                      reactor, "127.0.0.1", port->getHost().port())));
        WHORL_CO_TRY(std::string welcome, co_await client->nextLine());
        lines.push_back(welcome);
        reactor.whenStopping().addCallback([&] { stopping = true; });
        reactor.stop();  // as SIGTERM does
        WHORL_CO_TRY(std::string bye, co_await client->nextLine());
        lines.push_back(bye);
        lost = co_await client.whenLost();
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(stopping);
  EXPECT_EQ(lines, (std::vector<std::string>{"welcome", "server restarting, bye"}));
  EXPECT_TRUE(lost.isOk()) << lost.message();
}

}  // namespace
