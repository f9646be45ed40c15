// Fuzz target: the SMTP command handling of smtp_starttls (examples/smtp_protocol.h), what a mail
// client (or anyone who connects to port 25) sends.
//
// Input: one byte of configuration (require TLS, a small or the default size limit), then the
// client's bytes. The protocol runs over an in-memory transport (whose startTLS refuses, so
// STARTTLS takes its failure path). After the input the clock moves past the idle timeout.
// Whole, byte by byte and random chunks must give the same replies, the same delivered messages
// and the same close.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "examples/smtp_protocol.h"
#include "framework/base/log.h"
#include "tests/fake_transport.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

std::string run(uint8_t config, std::string_view stream, const whorl::fuzz::Cuts& cuts) {
  using namespace whorl;
  std::string delivered;
  auto c = std::make_shared<smtp::SmtpConfig>();
  c->hostname = "mx.fuzz.test";
  c->requireTls = (config & 1) != 0;
  if ((config & 2) != 0) c->maxSize = 64;
  c->idleTimeout = std::chrono::seconds(30);
  c->mailbox = std::make_shared<smtp::Mailbox>(smtp::MailboxOptions{
      "mx.fuzz.test", "", [&delivered](std::string_view m) { delivered.append(m); }});
  test::FakeReactor reactor;
  test::FakeTransport transport(reactor);
  std::unique_ptr<api::Protocol> protocol = smtp::makeSmtp(c);
  transport.connect(protocol.get());
  cuts.forEach(stream, [&](std::string_view chunk) {
    if (!transport.disconnecting()) protocol->dataReceived(chunk);
  });
  bool closedByInput = transport.disconnecting();
  reactor.advance(std::chrono::seconds(31));
  std::string out = "replies:\n" + fuzz::escape(transport.written()) + "\ndelivered:\n" +
                    fuzz::escape(delivered) + "\n";
  if (closedByInput) {
    out += "closed by the input\n";
  } else {
    fuzz::check(transport.disconnecting(), "an idle connection is closed");
    fuzz::check(
        transport.written().ends_with("421 mx.fuzz.test idle timeout, closing connection\r\n"),
        "an idle connection gets 421");
  }
  protocol->connectionLost(Status::connectionDone());
  fuzz::check(reactor.pendingTimers() == 0, "no timer outlives the connection");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  whorl::log::setLevel(whorl::log::Level::kOff);  // every input would log its closes
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view stream = whorl::fuzz::asText(data + 1, size - 1);
  whorl::fuzz::expectSameForEveryCut(stream, "SMTP session", [&](const whorl::fuzz::Cuts& cuts) {
    return run(data[0], stream, cuts);
  });
  return 0;
}
