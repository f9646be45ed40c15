// Fuzz target: the echo service's config file (examples/service/config.h), "key = value" lines an
// operator writes.
//
// The text is parsed whole; the target checks that the result is a function of the lines, not of
// their line ends: the same text with CRLF line ends gives the same configuration or the same
// error (line numbers included), and values stay within what the service accepts.
#include <cstdint>
#include <string>
#include <string_view>

#include "examples/service/config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

std::string show(const whorl::Result<whorl::service::ServiceConfig>& c) {
  if (!c) return "error: " + c.status().message();
  std::string out;
  for (const auto& l : c->listen) out += "listen '" + whorl::fuzz::escape(l) + "'\n";
  out += "shards " + std::to_string(c->shards) + " max " + std::to_string(c->maxConnections) +
         " idle " + std::to_string(c->idleTimeout.count()) + " handshake " +
         std::to_string(c->handshakeTimeout.count()) + " drain " +
         std::to_string(c->drainTimeout.count()) + " format " +
         std::to_string(static_cast<int>(c->logFormat)) + " level " +
         std::to_string(static_cast<int>(c->logLevel)) + " metrics '" +
         whorl::fuzz::escape(c->metrics) + "' proxy " + whorl::net::toString(c->proxyProtocol) +
         " keys '" + whorl::fuzz::escape(c->sessionTicketKeys) + "'\n";
  whorl::fuzz::check(c->idleTimeout.count() >= 0 && c->handshakeTimeout.count() >= 0 &&
                         c->drainTimeout.count() >= 0,
                     "timeouts are not negative");
  whorl::fuzz::check(c->shards >= 0, "shards are not negative");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = whorl::fuzz::asText(data, size);
  std::string lf = show(whorl::service::parseConfigText(text, "fuzz.conf"));
  std::string crlf_text;
  for (char c : text) {
    if (c == '\n') crlf_text.push_back('\r');
    crlf_text.push_back(c);
  }
  std::string crlf = show(whorl::service::parseConfigText(crlf_text, "fuzz.conf"));
  if (lf != crlf) {
    std::fprintf(stderr, "fuzz: CRLF line ends change the config:\n--- LF:\n%s\n--- CRLF:\n%s\n",
                 lf.c_str(), crlf.c_str());
    std::abort();
  }
  return 0;
}
