// The SMTP protocol of smtp_starttls (an RFC 5321 subset with STARTTLS, RFC 3207), as a library
// so that tests and the fuzzer (tests/fuzz/smtp_fuzz.cc) drive it over in-memory transports.
//
//   auto mailbox = std::make_shared<smtp::Mailbox>(smtp::MailboxOptions{.hostname = "mx"});
//   auto config = std::make_shared<smtp::SmtpConfig>();
//   config->hostname = "mx";
//   config->tls = cert->options();             // what STARTTLS upgrades with
//   config->mailbox = mailbox;
//   endpoint.listen(smtp::smtpFactory(config)); // one Smtp protocol per connection
//
// Commands: EHLO/HELO, STARTTLS, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT (VRFY/EXPN answer
// 502, HELP 214). EHLO advertises PIPELINING, SIZE, 8BITMIME and, until TLS is active, STARTTLS.
// After STARTTLS the session starts over: the client must greet again (RFC 3207 §4.2).
// requireTls refuses MAIL, RCPT and DATA before STARTTLS with 530. A connection that sends
// nothing for idleTimeout (plain, during or after STARTTLS) gets "421 ... idle timeout" and is
// closed; the log names the cause.
//
// Ownership: each connection's state lives in its protocol; the config is shared (read-only) by
// all of them, and the Mailbox (stdout or a printer, and the Maildir) by all shards: it
// serialises deliveries.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "framework/api/protocol.h"
#include "framework/base/status.h"
#include "framework/tls/options.h"

namespace whorl::smtp {

struct MailboxOptions {
  std::string hostname;  // for Maildir file names and the Received: header
  std::string maildir;   // also store each message in this Maildir; empty: print only
  // Where a delivered message is printed (one call per message, under the mailbox's lock).
  // Default: standard output.
  std::function<void(std::string_view)> print;
};

// Where accepted messages go: printed, and optionally stored in a Maildir. Thread-safe.
class Mailbox {
 public:
  explicit Mailbox(MailboxOptions options) : options_(std::move(options)) {}

  // Creates DIR, DIR/tmp, DIR/new and DIR/cur.
  Status prepare() const;

  struct Envelope {
    std::string helo;
    std::string peer;
    std::string tls;  // "TLSv1.3", or empty for plaintext
    std::string sender;
    std::vector<std::string> recipients;
  };

  // Delivers one message (its data after dot-unstuffing, CRLF line ends). Returns the queue id,
  // or the reason it could not be stored.
  Result<std::string> deliver(const Envelope& env, const std::string& data);

 private:
  Status store(const Envelope& env, const std::string& data, uint64_t n, const char* id) const;

  MailboxOptions options_;
  std::atomic<uint64_t> counter_{0};
  std::mutex outMu_;
};

struct SmtpConfig {
  std::string hostname;               // in the greeting and EHLO replies
  tls::TLSOptions tls;                // what STARTTLS upgrades with
  bool requireTls = false;            // 530 for MAIL, RCPT and DATA before STARTTLS
  size_t maxSize = 10 * 1024 * 1024;  // largest message, advertised as SIZE
  // Closes a connection without a command (or data line) for this long; zero: never. RFC 5321
  // §4.5.3.2.7 asks servers to wait at least 5 minutes.
  std::chrono::milliseconds idleTimeout{std::chrono::minutes(5)};
  std::shared_ptr<Mailbox> mailbox;
};

// One connection's protocol, and the factory that makes one per connection.
std::unique_ptr<api::Protocol> makeSmtp(std::shared_ptr<const SmtpConfig> config);
std::shared_ptr<api::Factory> smtpFactory(std::shared_ptr<const SmtpConfig> config);

}  // namespace whorl::smtp
