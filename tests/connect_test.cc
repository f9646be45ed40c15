// Connecting as an application does, on real sockets: connectProtocol reports exactly once (a TCP
// refusal, a TLS verification failure, a handshake timeout, success), a failure after success
// goes only to connectionLost, handles never dangle (a timer that outlives the connection holds
// one: ASan checks the rest), cancellation and addTimeout stop an attempt, and the callback form
// of SSL4ClientEndpoint::connect reports a failed handshake once. Each test runs its coroutine
// with react(), which is tested here too (exit codes, the failure line).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "framework/api/deferred.h"
#include "framework/api/line_receiver.h"
#include "framework/api/protocol.h"
#include "framework/endpoint/endpoint.h"
#include "framework/endpoint/tls_endpoint.h"
#include "framework/reactor/react.h"
#include "framework/tls/certificate.h"
#include "tests/socket_util.h"

namespace whorl {
namespace {

using namespace std::chrono_literals;
using api::Deferred;
using api::ProtocolHandle;
using reactor::Shard;

std::string cert(const std::string& name) {
  return std::string(std::getenv("TEST_SRCDIR")) + "/whorl/certs/" + name;
}

// What a client protocol saw.
struct Seen {
  int made = 0;
  int lost = 0;
  int handshakes = 0;
  Status reason;
};

class Client : public api::Protocol {
 public:
  explicit Client(Seen* seen) : seen_(seen) {}
  void connectionMade() override { ++seen_->made; }
  void handshakeCompleted() override { ++seen_->handshakes; }
  void connectionLost(const Status& reason) override {
    ++seen_->lost;
    seen_->reason = reason;
  }
  void say(std::string_view s) { transport()->write(s); }

 private:
  Seen* seen_;
};

class Echo : public api::Protocol {
  void dataReceived(std::string_view data) override { transport()->write(data); }
};

// Accepts and says nothing: a TLS client's handshake stalls.
class Silent : public api::Protocol {};

// Closes every connection as soon as it is made.
class Closer : public api::Protocol {
  void connectionMade() override { transport()->loseConnection(); }
};

reactor::ReactOptions testReact() {
  reactor::ReactOptions o;
  o.runtime.pinThreads = false;
  o.runtime.buffers.count = 16;
  o.program = "connect_test";
  return o;
}

Result<uint16_t> listenTcp(Shard& shard, std::shared_ptr<api::Factory> factory) {
  auto port = endpoint::TCP4ServerEndpoint(*shard.runtime(), 0, {.interface = "127.0.0.1"})
                  .listen(std::move(factory));
  if (!port) return port.status();
  uint16_t n = (*port)->getHost().port();
  return n;
}

Result<uint16_t> listenTls(Shard& shard, std::shared_ptr<api::Factory> factory) {
  auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
  if (!pc) return pc.status();
  auto options = pc->options();
  options.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  auto port = endpoint::SSL4ServerEndpoint(*shard.runtime(), 0, options, tcp).listen(std::move(factory));
  if (!port) return port.status();
  uint16_t n = (*port)->getHost().port();
  return n;
}

tls::TLSOptions clientOptions(const std::string& ca,
                                            std::chrono::milliseconds handshakeTimeout = 10s) {
  auto authority = tls::Certificate::loadPEMFile(cert(ca));
  if (!authority) return authority.status();
  tls::ClientTLSExtras extras;
  extras.handshakeTimeout = handshakeTimeout;
  return tls::optionsForClientTLS("localhost", tls::trustRootFromCertificates({*authority}),
                                  std::nullopt, {}, extras);
}

// --- react ----------------------------------------------------------------------------------------

TEST(React, ExitStatusFollowsMain) {
  EXPECT_EQ(reactor::react([](Shard&) { return api::succeed(); }, testReact()), 0);
  EXPECT_EQ(reactor::react([](Shard&) { return api::succeed(7); }, testReact()), 7);
  testing::internal::CaptureStderr();
  int rc = reactor::react(
      [](Shard& reactor) -> Deferred<void> {
        Status s = co_await api::deferLater(reactor, 1ms);
        EXPECT_TRUE(s.isOk());
        co_return Status(Status::Code::kRefused, "nobody listens");
      },
      testReact());
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "connect_test: nobody listens\n");
}

TEST(React, ANeverFiringMainServesUntilTheRuntimeStops) {
  bool stopped = false;
  int rc = reactor::react(
      [&](Shard& reactor) {
        reactor.callLater(5ms, [&] {
          stopped = true;
          reactor.stop();  // as SIGTERM would
        });
        return Deferred<void>();
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(stopped);
}

TEST(React, AServerMainEndsWhenTheRuntimeStopsAndKeepsItsDrain) {
  bool stopped = false;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        reactor.callLater(5ms, [&] { reactor.stop(); });  // as SIGTERM would
        co_await reactor.whenStopping();
        stopped = true;
        EXPECT_TRUE(reactor.stopping());
        EXPECT_GE(reactor.drainDeadline() - reactor.now(), 1s);  // testReact's drain, not cut short
        Status again = co_await reactor.whenStopping();  // fires at once once stopping
        EXPECT_TRUE(again.isOk());
        co_return {};
      },
      [] {
        auto o = testReact();
        o.runtime.drainTimeout = 2s;
        return o;
      }());
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(stopped);
}

// --- connect reports exactly once -------------------------------------------------------------------

TEST(Connect, TcpRefusedFailsOnceAndTheProtocolSeesNothing) {
  Seen seen;
  int reports = 0;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        uint16_t closed = testutil::unusedPort();
        auto client = co_await endpoint::connectProtocol<Client>(
            endpoint::TCP4ClientEndpoint(reactor, "127.0.0.1", closed), &seen);
        ++reports;
        EXPECT_FALSE(client.isOk());
        EXPECT_EQ(client.status().code(), Status::Code::kRefused) << client.status().message();
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(reports, 1);
  EXPECT_EQ(seen.made, 0);
  EXPECT_EQ(seen.lost, 0);
}

TEST(Connect, TlsVerifyFailureFailsTheConnectOnlyNotConnectionLost) {
  Seen seen;
  int reports = 0;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        auto port = listenTls(reactor, api::Factory::forProtocol<Echo>());
        if (!port) co_return port.status();
        auto options = clientOptions("test/other-ca.pem");  // not the server's authority
        if (!options) co_return options.status();
        auto client = co_await endpoint::connectProtocol<Client>(
            endpoint::SSL4ClientEndpoint(reactor, "localhost", *port, options), &seen);
        ++reports;
        EXPECT_FALSE(client.isOk());
        EXPECT_EQ(client.status().code(), Status::Code::kTls);
        EXPECT_NE(client.status().message().find("certificate verify failed"), std::string::npos)
            << client.status().message();
        // Give a late connectionLost every chance to show up.
        co_await api::deferLater(reactor, 20ms);
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(reports, 1);
  EXPECT_EQ(seen.made, 0);
  EXPECT_EQ(seen.lost, 0);
}

TEST(Connect, CallbackFormReportsAFailedHandshakeOnce) {
  Seen seen;
  int reports = 0;
  Status reported;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        auto port = listenTls(reactor, api::Factory::forProtocol<Echo>());
        if (!port) co_return port.status();
        auto options = clientOptions("test/other-ca.pem");
        if (!options) co_return options.status();
        Deferred<void> done;
        endpoint::SSL4ClientEndpoint(reactor, "localhost", *port, options)
            .connect(api::Factory::forProtocol<Client>(&seen),
                     [&, done](Result<api::Protocol*> p) mutable {
                       ++reports;
                       reported = p.status();
                       done.callback();
                     });
        co_await done;
        co_await api::deferLater(reactor, 20ms);
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(reports, 1);
  EXPECT_NE(reported.message().find("certificate verify failed"), std::string::npos);
  EXPECT_EQ(seen.made, 0);
  EXPECT_EQ(seen.lost, 0);
}

TEST(Connect, HandshakeTimeoutFailsOnce) {
  Seen seen;
  int reports = 0;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        auto port = listenTcp(reactor, api::Factory::forProtocol<Silent>());
        if (!port) co_return port.status();
        auto options = clientOptions("test/ca.pem", 100ms);
        if (!options) co_return options.status();
        auto client = co_await endpoint::connectProtocol<Client>(
            endpoint::SSL4ClientEndpoint(reactor, "localhost", *port, options), &seen);
        ++reports;
        EXPECT_EQ(client.status().code(), Status::Code::kTimeout) << client.status().message();
        EXPECT_NE(client.status().message().find("TLS handshake timed out"), std::string::npos);
        co_await api::deferLater(reactor, 20ms);
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(reports, 1);
  EXPECT_EQ(seen.made, 0);
  EXPECT_EQ(seen.lost, 0);
}

TEST(Connect, SuccessThenTheFailureGoesToConnectionLostOnly) {
  Seen seen;
  int reports = 0;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        auto port = listenTls(reactor, api::Factory::forProtocol<Closer>());
        if (!port) co_return port.status();
        auto options = clientOptions("test/ca.pem");
        if (!options) co_return options.status();
        auto client = co_await endpoint::connectProtocol<Client>(
            endpoint::SSL4ClientEndpoint(reactor, "localhost", *port, options), &seen);
        ++reports;
        if (!client) co_return client.status();
        EXPECT_EQ(seen.made, 1);        // connectionMade came before the result...
        EXPECT_EQ(seen.handshakes, 1);  // ...after the handshake
        EXPECT_TRUE(client->get() != nullptr);
        Status why = co_await client->whenLost();
        EXPECT_TRUE(why.isOk()) << why.message();  // the server closed cleanly
        EXPECT_EQ(client->get(), nullptr);
        EXPECT_TRUE(client->lost());
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(reports, 1);
  EXPECT_EQ(seen.made, 1);
  EXPECT_EQ(seen.lost, 1);
  EXPECT_TRUE(seen.reason.isCleanClose()) << seen.reason.message();
}

TEST(Connect, AHandleInATimerOutlivesItsConnectionSafely) {
  Seen seen;
  bool timerRan = false;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        auto port = listenTcp(reactor, api::Factory::forProtocol<Echo>());
        if (!port) co_return port.status();
        auto client = co_await endpoint::connectProtocol<Client>(
            endpoint::TCP4ClientEndpoint(reactor, "127.0.0.1", *port), &seen);
        if (!client) co_return client.status();
        ProtocolHandle<Client> handle = *client;
        Deferred<void> timerDone;
        // The timer fires after the protocol was destroyed: the handle says so (ASan would catch a
        // use of the freed protocol).
        reactor.callLater(30ms, [handle, &timerRan, timerDone]() mutable {
          timerRan = true;
          EXPECT_EQ(handle.get(), nullptr);
          if (Client* c = handle.get()) c->say("too late");
          timerDone.callback();
        });
        handle->transport()->loseConnection();
        co_await handle.whenLost();
        co_await timerDone;
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(timerRan);
  EXPECT_EQ(seen.lost, 1);
}

TEST(Connect, CancellingDuringTheHandshakeStopsTheAttempt) {
  Seen seen;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        auto port = listenTcp(reactor, api::Factory::forProtocol<Silent>());
        if (!port) co_return port.status();
        auto options = clientOptions("test/ca.pem");
        if (!options) co_return options.status();
        // addTimeout cancels the connect (TCP is up, the handshake stalls) and reports kTimeout.
        auto client = co_await endpoint::connectProtocol<Client>(
                          endpoint::SSL4ClientEndpoint(reactor, "localhost", *port, options), &seen)
                          .addTimeout(50ms, reactor);
        EXPECT_EQ(client.status().code(), Status::Code::kTimeout);
        EXPECT_EQ(client.status().message(), "timed out after 50 ms");
        co_await api::deferLater(reactor, 20ms);
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(seen.made, 0);
  EXPECT_EQ(seen.lost, 0);
}

TEST(Connect, CancellingBeforeTcpConnectsStopsTheAttempt) {
  Seen seen;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        uint16_t closed = testutil::unusedPort();
        Deferred<ProtocolHandle<Client>> attempt = endpoint::connectProtocol<Client>(
            endpoint::TCP4ClientEndpoint(reactor, "127.0.0.1", closed), &seen);
        attempt.cancel();  // still resolving / connecting
        auto client = co_await attempt;
        EXPECT_EQ(client.status().code(), Status::Code::kCancelled);
        co_await api::deferLater(reactor, 20ms);
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(seen.made, 0);
}

// --- the other Deferred forms: listen, resolve, sendFile ------------------------------------------

// Sends the file it is given with sendFile's Deferred form, then closes; records the outcome.
class FileSender : public api::Protocol {
 public:
  FileSender(int fd, uint64_t length, Status* sent) : fd_(fd), length_(length), sent_(sent) {}
  void connectionMade() override {
    transport()->sendFile(fd_, 0, length_).addBoth([this, h = ProtocolHandle<>(this)](Status s) {
      *sent_ = s;
      if (h) transport()->loseConnection();
    });
  }

 private:
  int fd_;
  uint64_t length_;
  Status* sent_;
};

class Collector : public api::Protocol {
 public:
  explicit Collector(std::string* got) : got_(got) {}
  void dataReceived(std::string_view data) override { got_->append(data); }

 private:
  std::string* got_;
};

TEST(DeferredForms, ListenResolveAndSendFile) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/payload";
  std::string payload(300000, 'x');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fwrite(payload.data(), 1, payload.size(), f);
  std::fclose(f);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);

  Status sent(Status::Code::kAborted, "never sent");
  std::string got;
  int rc = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        // listenDeferred fires once every shard accepts. (The endpoint is a variable: GCC 12
        // destroys a braced options temporary inside a co_await expression twice; see deferred.h.)
        endpoint::TCP4ServerEndpoint server(reactor, 0, {.interface = "127.0.0.1"});
        auto port = co_await server.listenDeferred(
            api::Factory::forProtocol<FileSender>(fd, uint64_t{payload.size()}, &sent));
        if (!port) co_return port.status();
        // The resolver's Deferred form: a name, and a literal.
        auto addresses = co_await reactor.runtime()->resolver().resolve("localhost", 1234);
        if (!addresses) co_return addresses.status();
        EXPECT_FALSE(addresses->empty());
        for (const Address& a : *addresses) EXPECT_EQ(a.port(), 1234);
        auto literal = co_await reactor.runtime()->resolver().resolve("127.0.0.1", 1, AF_INET);
        EXPECT_EQ((*literal)[0].toString(), "127.0.0.1:1");
        auto bad = co_await reactor.runtime()->resolver().resolve("no such host.invalid", 1);
        EXPECT_FALSE(bad.isOk());

        auto client = co_await endpoint::connectProtocol<Collector>(
            endpoint::TCP4ClientEndpoint(reactor, "127.0.0.1", (*port)->getHost().port()), &got);
        if (!client) co_return client.status();
        Status lost = co_await client->whenLost();
        EXPECT_TRUE(lost.isOk()) << lost.message();
        co_return {};
      },
      testReact());
  close(fd);
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(sent.isOk()) << sent.message();
  EXPECT_EQ(got, payload);
}


// --- startTLS as a Deferred --------------------------------------------------------------------

// Plain lines; "STARTTLS" is answered with "READY" and the connection switches to TLS.
class StartTlsServer : public api::LineReceiver {
 public:
  explicit StartTlsServer(tls::TLSOptions options) : options_(std::move(options)) {}
  void lineReceived(std::string_view line) override {
    if (line == "STARTTLS") {
      sendLine("READY");
      EXPECT_TRUE(transport()->startTLS(options_).isOk());
      return;
    }
    sendLine(std::string(line) + (transport()->isTLS() ? " (tls)" : " (plain)"));
  }

 private:
  tls::TLSOptions options_;
};

// Hands each received line to whoever waits for it.
class LineClient : public api::LineReceiver {
 public:
  explicit LineClient(Seen* seen) : seen_(seen) {}
  Deferred<std::string> nextLine() {
    waiting_ = Deferred<std::string>();
    return waiting_;
  }
  void lineReceived(std::string_view line) override { waiting_.callback(std::string(line)); }
  void connectionLost(const Status& reason) override {
    ++seen_->lost;
    seen_->reason = reason;
  }

 private:
  Seen* seen_;
  Deferred<std::string> waiting_;
};

// Arguments by value: a coroutine keeps its parameters, and a reference to a temporary dangles.
Deferred<void> upgradeAndTalk(Shard& reactor, std::string ca, Seen* seen, Status* secured,
                              std::string* reply) {
  auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
  if (!pc) co_return pc.status();
  auto serverOptions = pc->options();
  serverOptions.extraCertChain = {*tls::Certificate::loadPEMFile(cert("test/intermediate.pem"))};
  auto port = listenTcp(reactor, api::Factory::forProtocol<StartTlsServer>(tls::TLSOptions(serverOptions)));
  if (!port) co_return port.status();
  auto client = co_await endpoint::connectProtocol<LineClient>(
      endpoint::TCP4ClientEndpoint(reactor, "127.0.0.1", *port), seen);
  if (!client) co_return client.status();
  Deferred<std::string> ready = (*client)->nextLine();
  (*client)->sendLine("STARTTLS");
  Result<std::string> go = co_await ready;
  if (!go) co_return go.status();
  EXPECT_EQ(*go, "READY");
  *secured = co_await (*client)->transport()->startTLSDeferred(clientOptions(ca));
  if (!secured->isOk()) {
    co_await client->whenLost();
    co_return {};
  }
  EXPECT_TRUE((*client)->transport()->isTLS());
  Deferred<std::string> answer = (*client)->nextLine();
  (*client)->sendLine("hello");
  Result<std::string> line = co_await answer;
  if (line) *reply = *line;
  (*client)->transport()->loseConnection();
  co_await client->whenLost();
  co_return {};
}

TEST(StartTLS, TheDeferredFormFiresWhenTheHandshakeCompleted) {
  Seen seen;
  Status secured(Status::Code::kAborted, "never set");
  std::string reply;
  int rc = reactor::react(
      [&](Shard& reactor) { return upgradeAndTalk(reactor, "test/ca.pem", &seen, &secured, &reply); },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(secured.isOk()) << secured.message();
  EXPECT_EQ(reply, "hello (tls)");
  EXPECT_EQ(seen.lost, 1);
}

TEST(StartTLS, TheDeferredFormFailsWithTheHandshakesReason) {
  Seen seen;
  Status secured;
  std::string reply;
  int rc = reactor::react(
      [&](Shard& reactor) {
        return upgradeAndTalk(reactor, "test/other-ca.pem", &seen, &secured, &reply);
      },
      testReact());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(secured.code(), Status::Code::kTls);
  EXPECT_NE(secured.message().find("certificate verify failed"), std::string::npos)
      << secured.message();
  // The connection ended with the same reason: connectionLost got it too.
  EXPECT_EQ(seen.lost, 1);
  EXPECT_EQ(seen.reason.message(), secured.message());
  EXPECT_EQ(reply, "");

  // startTLS's own refusal fails the Deferred at once.
  int rc2 = reactor::react(
      [&](Shard& reactor) -> Deferred<void> {
        auto port = listenTcp(reactor, api::Factory::forProtocol<Echo>());
        if (!port) co_return port.status();
        auto client = co_await endpoint::connectProtocol<LineClient>(
            endpoint::TCP4ClientEndpoint(reactor, "127.0.0.1", *port), &seen);
        if (!client) co_return client.status();
        auto pc = tls::PrivateCertificate::loadPEMFile(cert("test/localhost.pem"));
        // Server options on the connecting side: the roles do not match.
        Status s = co_await (*client)->transport()->startTLSDeferred(tls::TLSOptions(pc->options()));
        EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
        EXPECT_NE(s.message().find("this side acts as TLS client"), std::string::npos) << s.message();
        (*client)->transport()->loseConnection();
        co_return {};
      },
      testReact());
  EXPECT_EQ(rc2, 0);
}

}  // namespace
}  // namespace whorl
