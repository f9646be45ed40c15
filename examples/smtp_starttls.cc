// smtp_starttls: a small SMTP server (an RFC 5321 subset) that upgrades connections with
// STARTTLS (RFC 3207). It accepts every message and prints it to standard output; with --maildir
// it also stores each one as a file in a Maildir (DIR/new).
//
//   bazel run //examples:smtp_starttls -- --port 8025 --maildir /tmp/whorl-mail
//   openssl s_client -starttls smtp -connect 127.0.0.1:8025 -CAfile certs/public.pem
//       -verify_hostname example.com -crlf -quiet                     (one command line)
//   curl --ssl-reqd --cacert certs/public.pem --resolve example.com:8025:127.0.0.1
//       smtp://example.com:8025 --mail-from a@example.com --mail-rcpt b@example.com -T message.txt
//
// The protocol is examples/smtp_protocol.h (commands, STARTTLS, the Mailbox); this file is its
// command line. --require-tls refuses MAIL, RCPT and DATA before STARTTLS with 530.
// --idle-timeout closes a connection that sends no command for that long (default 5 minutes, as
// RFC 5321 asks; 0: never), plain or after STARTTLS, with 421 and a log line naming the cause.
// Plaintext a client pipelines after STARTTLS (the CVE-2011-0411 injection) closes the
// connection: the transport's default PipelinedInput::kReject for TLS servers.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "examples/smtp_protocol.h"
#include "framework/base/files.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"

using namespace whorl;

namespace {

std::string defaultHostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 8000;
  int shards = 0;
  std::string interface;
  std::string certPath = "certs/server.pem";
  std::string maildir;
  std::string hostname = defaultHostname();
  bool requireTls = false;
  uint64_t maxSize = 10 * 1024 * 1024;
  double drain = 10;
  std::chrono::milliseconds idleTimeout = std::chrono::minutes(5);
  Flags flags("smtp_starttls",
              "SMTP server (RFC 5321 subset) with STARTTLS; prints each message it accepts.");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("cert", &certPath, "PEM file with the private key and certificate for STARTTLS");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.add("hostname", &hostname, "the name in the greeting and in EHLO replies");
  flags.add("require-tls", &requireTls, "refuse MAIL, RCPT and DATA before STARTTLS (530)");
  flags.add("maildir", &maildir, "also store each message in this Maildir (created if missing)");
  flags.add("max-size", &maxSize, "largest message accepted, in bytes (advertised as SIZE)");
  flags.add("drain-timeout", &drain, "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.add("idle-timeout", &idleTimeout,
            "close a connection that sends no command for this long, plain or after STARTTLS "
            "(seconds, or with a unit: 500ms, 2m; 0: never)");
  flags.parseOrExit(argc, argv);

  auto cert = tls::PrivateCertificate::loadPEMFile(findDataFile(certPath));
  if (!cert) {
    std::fprintf(stderr, "smtp_starttls: %s\n", cert.status().message().c_str());
    return 1;
  }
  tls::TLSOptions options = cert->options();
  if (!options) {
    std::fprintf(stderr, "smtp_starttls: %s\n", options.status().message().c_str());
    return 1;
  }
  if (idleTimeout.count() < 0) {
    std::fprintf(stderr, "smtp_starttls: --idle-timeout must not be negative\n");
    return 2;
  }
  auto config = std::make_shared<smtp::SmtpConfig>();
  config->hostname = hostname;
  config->tls = options;
  config->requireTls = requireTls;
  config->maxSize = static_cast<size_t>(maxSize);
  config->idleTimeout = idleTimeout;
  config->mailbox = std::make_shared<smtp::Mailbox>(smtp::MailboxOptions{hostname, maildir, {}});
  if (Status s = config->mailbox->prepare(); !s.isOk()) {
    std::fprintf(stderr, "smtp_starttls: %s\n", s.message().c_str());
    return 1;
  }

  reactor::RuntimeOptions ro;
  ro.shards = shards;
  ro.drainTimeout = std::chrono::milliseconds(static_cast<long>(drain * 1000));
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "smtp_starttls: %s\n", s.message().c_str());
    return 1;
  }
  endpoint::TcpServerOptions so;
  so.interface = interface;
  auto listening =
      endpoint::TCP4ServerEndpoint(runtime, static_cast<uint16_t>(port), so)
          .listen(smtp::smtpFactory(config));
  if (!listening) {
    std::fprintf(stderr, "smtp_starttls: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo, "SMTP server %s listening on %s as %s%s%s; stop with Ctrl-C", hostname.c_str(),
            (*listening)->getHost().toString().c_str(), cert->toString().c_str(),
            requireTls ? ", TLS required" : "",
            maildir.empty() ? "" : (", Maildir " + maildir).c_str());
  return runtime.run();
}
