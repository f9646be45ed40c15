#include "examples/smtp_protocol.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "framework/api/line_receiver.h"
#include "framework/api/timeout_mixin.h"
#include "framework/api/transport.h"
#include "framework/base/log.h"

namespace whorl::smtp {

Status Mailbox::prepare() const {
  if (options_.maildir.empty()) return Status::ok();
  for (std::string d : {options_.maildir, options_.maildir + "/tmp", options_.maildir + "/new", options_.maildir + "/cur"}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return Status::fromErrno(errno, "mkdir " + d);
  }
  return Status::ok();
}


Result<std::string> Mailbox::deliver(const Envelope& env, const std::string& data) {
  uint64_t n = counter_.fetch_add(1, std::memory_order_relaxed) + 1;
  char id[32];
  std::snprintf(id, sizeof(id), "%08llX", static_cast<unsigned long long>(n));
  if (!options_.maildir.empty()) {
    if (Status s = store(env, data, n, id); !s.isOk()) return s;
  }
  std::string rcpts;
  for (const auto& r : env.recipients) rcpts += (rcpts.empty() ? "<" : ", <") + r + ">";
  std::string out = "-- message from <" + env.sender + "> to " + rcpts +
                    " (TLS: " + (env.tls.empty() ? "none" : env.tls) + ")\n";
  // Lines end in LF on the terminal.
  for (size_t pos = 0; pos < data.size();) {
    size_t end = data.find("\r\n", pos);
    if (end == std::string::npos) end = data.size();
    out.append(data, pos, end - pos);
    out.push_back('\n');
    pos = end + 2;
  }
  out += "-- end of message\n";
  std::lock_guard<std::mutex> lock(outMu_);
  if (options_.print) {
    options_.print(out);
  } else {
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
  return std::string(id);
}


// Maildir delivery: write DIR/tmp/NAME, then rename it into DIR/new.
Status Mailbox::store(const Envelope& env, const std::string& data, uint64_t n, const char* id) const {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  std::string name = std::to_string(ts.tv_sec) + ".P" + std::to_string(getpid()) + "Q" +
                     std::to_string(n) + "." + options_.hostname;
  char date[64];
  tm local;
  localtime_r(&ts.tv_sec, &local);
  std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &local);
  std::string header = "Return-Path: <" + env.sender + ">\r\nReceived: from " + env.helo + " (" +
                       env.peer + ") by " + options_.hostname + " with " +
                       (env.tls.empty() ? "ESMTP" : "ESMTPS (" + env.tls + ")") + " id " + id +
                       "; " + date + "\r\n";
  std::string tmp = options_.maildir + "/tmp/" + name;
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Status::fromErrno(errno, "open " + tmp);
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    unlink(tmp.c_str());
    return Status::fromErrno(errno ? errno : EIO, "write " + tmp);
  }
  std::string dest = options_.maildir + "/new/" + name;
  if (rename(tmp.c_str(), dest.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return Status::fromErrno(err, "rename " + tmp);
  }
  return Status::ok();
}


namespace {

constexpr size_t kMaxRecipients = 100;

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "FROM:<a@b> SIZE=10" with keyword "FROM:": the address inside <> and the parameters after it.
bool parsePath(std::string_view arg, std::string_view keyword, std::string* address,
               std::vector<std::string>* params) {
  if (arg.size() < keyword.size() || upper(arg.substr(0, keyword.size())) != keyword) return false;
  arg = trim(arg.substr(keyword.size()));
  if (arg.empty() || arg.front() != '<') return false;
  size_t close = arg.find('>');
  if (close == std::string_view::npos) return false;
  *address = std::string(arg.substr(1, close - 1));
  for (char c : *address) {
    if (static_cast<unsigned char>(c) < 0x21 || c == '<' || c == '>') return false;
  }
  std::string_view rest = arg.substr(close + 1);
  if (!rest.empty() && rest.front() != ' ') return false;
  rest = trim(rest);
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    params->emplace_back(rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view() : trim(rest.substr(sp));
  }
  return true;
}

class Smtp : public api::TimeoutMixin<api::LineReceiver> {
 public:
  explicit Smtp(std::shared_ptr<const SmtpConfig> config) : config_(std::move(config)) {}

  void connectionMade() override {
    peer_ = transport()->getPeer().toString();
    setMaxLength(4096);  // RFC 5321: command lines 512, text lines 1000 octets; be generous
    // Counts from the greeting; only whole lines count as activity, so a client trickling a
    // line byte by byte is closed as idle too.
    setTimeout(config_->idleTimeout);
    reply("220 " + config_->hostname + " ESMTP whorl");
  }

  void lineReceived(std::string_view line) override {
    resetTimeout();
    if (inData_) {
      dataLine(line);
      return;
    }
    size_t sp = line.find(' ');
    std::string verb = upper(line.substr(0, sp));
    std::string_view arg = sp == std::string_view::npos ? std::string_view() : trim(line.substr(sp));
    if (verb == "EHLO" || verb == "HELO") {
      hello(verb == "EHLO", arg);
    } else if (verb == "STARTTLS") {
      startTLS(arg);
    } else if (verb == "MAIL") {
      mail(arg);
    } else if (verb == "RCPT") {
      rcpt(arg);
    } else if (verb == "DATA") {
      data(arg);
    } else if (verb == "RSET") {
      resetTransaction();
      reply("250 OK");
    } else if (verb == "NOOP") {
      reply("250 OK");
    } else if (verb == "QUIT") {
      reply("221 " + config_->hostname + " closing connection");
      transport()->loseConnection();
    } else if (verb == "VRFY" || verb == "EXPN") {
      reply("502 Command not implemented");
    } else if (verb == "HELP") {
      reply("214 Commands: EHLO HELO STARTTLS MAIL RCPT DATA RSET NOOP QUIT HELP");
    } else {
      reply("500 Command not recognized");
    }
  }

  void lineLengthExceeded(std::string_view partial) override {
    WHORL_LOG(kWarning, "%s: line of %zu bytes is too long; closing", peer_.c_str(), partial.size());
    reply("500 Line too long");
    transport()->loseConnection();
  }

  void handshakeCompleted() override {
    WHORL_LOG(kInfo, "%s: TLS started (%s %s)", peer_.c_str(), transport()->tlsVersion().c_str(),
              transport()->cipher().c_str());
  }

  // RFC 5321 §4.5.3.2: the server may close an idle session, with 421 first.
  void timeoutConnection() override {
    if (transport()->disconnecting()) return;
    reply("421 " + config_->hostname + " idle timeout, closing connection");
    TimeoutMixin::timeoutConnection();  // logs the reason and closes
  }

  void connectionLost(const Status& reason) override {
    if (!reason.isCleanClose()) {
      WHORL_LOG(kWarning, "%s: connection lost: %s", peer_.c_str(), reason.message().c_str());
    }
    TimeoutMixin::connectionLost(reason);
  }

 private:
  void reply(std::string_view line) { sendLine(line); }

  bool secure() const { return transport()->isTLS(); }

  void resetTransaction() {
    inMail_ = false;
    sender_.clear();
    recipients_.clear();
  }

  // RFC 3207: before STARTTLS, refuse everything but EHLO/HELO, STARTTLS, NOOP, RSET and QUIT.
  bool refusedWithoutTls() {
    if (!config_->requireTls || secure()) return false;
    reply("530 Must issue a STARTTLS command first");
    return true;
  }

  void hello(bool extended, std::string_view arg) {
    bool printable = true;
    for (char c : arg) printable = printable && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
    if (arg.empty() || !printable) {  // it goes into the Received: header
      reply(extended ? "501 Syntax: EHLO hostname" : "501 Syntax: HELO hostname");
      return;
    }
    resetTransaction();  // RFC 5321 §4.1.4: a greeting also resets the transaction
    helo_ = std::string(arg);
    if (!extended) {
      reply("250 " + config_->hostname);
      return;
    }
    std::vector<std::string> lines = {config_->hostname + " greets " + helo_, "PIPELINING",
                                      "SIZE " + std::to_string(config_->maxSize), "8BITMIME"};
    if (!secure()) lines.push_back("STARTTLS");
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      out += (i + 1 < lines.size() ? "250-" : "250 ") + lines[i] + "\r\n";
    }
    transport()->write(out);
  }

  void startTLS(std::string_view arg) {
    if (!arg.empty()) {
      reply("501 Syntax: STARTTLS takes no parameters");
      return;
    }
    if (secure()) {
      reply("503 TLS already active");
      return;
    }
    reply("220 Ready to start TLS");
    // Nothing from before the handshake counts any more (RFC 3207 §4.2). Plaintext the client
    // pipelined behind STARTTLS is rejected by the transport (PipelinedInput::kReject).
    helo_.clear();
    resetTransaction();
    if (Status s = transport()->startTLS(config_->tls); !s.isOk()) {
      WHORL_LOG(kWarning, "%s: STARTTLS failed: %s", peer_.c_str(), s.message().c_str());
      transport()->loseConnection();
    }
  }

  void mail(std::string_view arg) {
    if (refusedWithoutTls()) return;
    if (helo_.empty()) {
      reply("503 Bad sequence of commands: send EHLO/HELO first");
      return;
    }
    if (inMail_) {
      reply("503 Bad sequence of commands: nested MAIL command");
      return;
    }
    std::string address;
    std::vector<std::string> params;
    if (!parsePath(arg, "FROM:", &address, &params)) {
      reply("501 Syntax: MAIL FROM:<address>");
      return;
    }
    for (const auto& p : params) {
      std::string u = upper(p);
      if (u.rfind("SIZE=", 0) == 0) {
        char* end = nullptr;
        unsigned long long size = std::strtoull(p.c_str() + 5, &end, 10);
        if (end == p.c_str() + 5 || *end != '\0') {
          reply("501 Syntax: SIZE=<number>");
          return;
        }
        if (size > config_->maxSize) {
          reply("552 Message size exceeds fixed maximum message size");
          return;
        }
      } else if (u != "BODY=7BIT" && u != "BODY=8BITMIME") {
        reply("555 MAIL FROM parameter not recognized: " + p);
        return;
      }
    }
    inMail_ = true;
    sender_ = std::move(address);
    reply("250 OK");
  }

  void rcpt(std::string_view arg) {
    if (refusedWithoutTls()) return;
    if (!inMail_) {
      reply("503 Bad sequence of commands: need MAIL first");
      return;
    }
    std::string address;
    std::vector<std::string> params;
    if (!parsePath(arg, "TO:", &address, &params) || address.empty()) {
      reply("501 Syntax: RCPT TO:<address>");
      return;
    }
    if (!params.empty()) {
      reply("555 RCPT TO parameter not recognized: " + params.front());
      return;
    }
    if (recipients_.size() >= kMaxRecipients) {
      reply("452 Too many recipients");
      return;
    }
    recipients_.push_back(std::move(address));
    reply("250 OK");
  }

  void data(std::string_view arg) {
    if (refusedWithoutTls()) return;
    if (!arg.empty()) {
      reply("501 Syntax: DATA takes no parameters");
      return;
    }
    if (!inMail_) {
      reply("503 Bad sequence of commands: need MAIL first");
      return;
    }
    if (recipients_.empty()) {
      reply("554 No valid recipients");
      return;
    }
    inData_ = true;
    tooBig_ = false;
    body_.clear();
    reply("354 End data with <CR><LF>.<CR><LF>");
  }

  void dataLine(std::string_view line) {
    if (line == ".") {
      finishData();
      return;
    }
    if (!line.empty() && line.front() == '.') line.remove_prefix(1);  // dot-unstuffing
    if (tooBig_ || body_.size() + line.size() + 2 > config_->maxSize) {
      tooBig_ = true;  // keep reading to the end marker, store nothing
      body_.clear();
      return;
    }
    body_.append(line);
    body_.append("\r\n");
  }

  void finishData() {
    inData_ = false;
    if (tooBig_) {
      reply("552 Message size exceeds fixed maximum message size");
    } else {
      Mailbox::Envelope env{helo_, peer_, secure() ? transport()->tlsVersion() : std::string(),
                            sender_, recipients_};
      auto id = config_->mailbox->deliver(env, body_);
      if (id) {
        reply("250 OK: queued as " + *id);
      } else {
        WHORL_LOG(kError, "%s: cannot store a message: %s", peer_.c_str(),
                  id.status().message().c_str());
        reply("451 Requested action aborted: local error in processing");
      }
    }
    body_.clear();
    body_.shrink_to_fit();
    resetTransaction();
  }

  std::shared_ptr<const SmtpConfig> config_;
  std::string peer_;
  std::string helo_;  // empty until EHLO/HELO (again after STARTTLS)
  bool inMail_ = false;
  std::string sender_;
  std::vector<std::string> recipients_;
  bool inData_ = false;
  bool tooBig_ = false;
  std::string body_;
};

}  // namespace

std::unique_ptr<api::Protocol> makeSmtp(std::shared_ptr<const SmtpConfig> config) {
  return std::make_unique<Smtp>(std::move(config));
}

std::shared_ptr<api::Factory> smtpFactory(std::shared_ptr<const SmtpConfig> config) {
  return api::Factory::forProtocol<Smtp>(std::move(config));
}

}  // namespace whorl::smtp
