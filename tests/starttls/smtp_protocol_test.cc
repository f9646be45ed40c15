// The SMTP protocol of smtp_starttls (examples/smtp_protocol.h) over an in-memory transport: the
// idle timeout (421, close, reset by each command, off at zero) and a delivery to the Mailbox's
// printer, fed whole and one byte at a time. Real clients (openssl, curl, Python) are in
// smtp_test.sh.
#include "examples/smtp_protocol.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "tests/fake_transport.h"

namespace whorl::smtp {
namespace {

using std::chrono::seconds;

class SmtpProtocolTest : public ::testing::Test {
 protected:
  void connect(std::chrono::milliseconds idle) {
    auto c = std::make_shared<SmtpConfig>();
    c->hostname = "mx.test";
    c->idleTimeout = idle;
    c->mailbox = std::make_shared<Mailbox>(
        MailboxOptions{"mx.test", "", [this](std::string_view m) { printed_.append(m); }});
    protocol_ = makeSmtp(c);
    transport_.connect(protocol_.get());
  }
  void send(std::string_view data, size_t chunk = 0) {
    if (chunk == 0) chunk = data.size();
    for (size_t i = 0; i < data.size(); i += chunk) protocol_->dataReceived(data.substr(i, chunk));
  }

  test::FakeReactor reactor_;
  test::FakeTransport transport_{reactor_};
  std::unique_ptr<api::Protocol> protocol_;
  std::string printed_;
};

TEST_F(SmtpProtocolTest, IdleConnectionGets421AndIsClosed) {
  connect(seconds(30));
  EXPECT_EQ(transport_.written(), "220 mx.test ESMTP whorl\r\n");
  reactor_.advance(seconds(29));
  EXPECT_FALSE(transport_.disconnecting());
  reactor_.advance(seconds(1));
  EXPECT_TRUE(transport_.disconnecting());
  EXPECT_EQ(transport_.written(),
            "220 mx.test ESMTP whorl\r\n421 mx.test idle timeout, closing connection\r\n");
  protocol_->connectionLost(Status::connectionDone());
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
}

TEST_F(SmtpProtocolTest, EachCommandStartsTheIdlePeriodAgain) {
  connect(seconds(30));
  for (int i = 0; i < 5; ++i) {
    reactor_.advance(seconds(20));
    send("NOOP\r\n");
  }
  reactor_.advance(seconds(29));
  EXPECT_FALSE(transport_.disconnecting());
  reactor_.advance(seconds(1));
  EXPECT_TRUE(transport_.disconnecting());
}

TEST_F(SmtpProtocolTest, APartialLineIsNotActivity) {
  connect(seconds(30));
  reactor_.advance(seconds(20));
  send("NO");  // a client trickling bytes without finishing a command
  reactor_.advance(seconds(10));
  EXPECT_TRUE(transport_.disconnecting());
}

TEST_F(SmtpProtocolTest, ZeroTurnsTheTimeoutOff) {
  connect(std::chrono::milliseconds(0));
  EXPECT_EQ(reactor_.pendingTimers(), 0u);
  reactor_.advance(std::chrono::hours(24));
  EXPECT_FALSE(transport_.disconnecting());
}

TEST_F(SmtpProtocolTest, DeliversTheSameMessageFedWholeOrByteByByte) {
  const std::string session =
      "EHLO c.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
      "Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
  std::string results[2];
  for (size_t chunk : {0, 1}) {
    test::FakeTransport transport(reactor_);
    std::string printed;
    auto c = std::make_shared<SmtpConfig>();
    c->hostname = "mx.test";
    c->mailbox = std::make_shared<Mailbox>(
        MailboxOptions{"mx.test", "", [&printed](std::string_view m) { printed.append(m); }});
    std::unique_ptr<api::Protocol> protocol = makeSmtp(c);
    transport.connect(protocol.get());
    for (size_t i = 0; i < session.size(); i += chunk == 0 ? session.size() : chunk) {
      protocol->dataReceived(
          std::string_view(session).substr(i, chunk == 0 ? session.size() : chunk));
    }
    EXPECT_TRUE(transport.disconnecting());  // QUIT
    results[chunk] = transport.written() + printed;
    protocol->connectionLost(Status::connectionDone());
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_NE(results[0].find("250 OK: queued as 00000001\r\n221 mx.test closing connection\r\n"),
            std::string::npos)
      << results[0];
  EXPECT_NE(results[0].find("-- message from <a@example.com> to <b@example.com> (TLS: none)\n"
                            "Subject: x\n\n.dot\n-- end of message\n"),
            std::string::npos)
      << results[0];
}

}  // namespace
}  // namespace whorl::smtp
