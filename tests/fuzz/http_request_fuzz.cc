// Fuzz target: the HTTP/1.1 request parser (framework/http/request_parser.h), what any client of
// an HTTP listener sends.
//
// Input: one byte choosing the limits (the defaults, or small ones so that 414 and 431 are
// reached), then the bytes of a connection. Whole, byte by byte and random chunks must give the
// same requests (method, target, version, keep-alive, length, head, path, Host), the same body
// bytes and the same error; a failed parser stays failed.
#include <cstdint>
#include <string>
#include <string_view>

#include "framework/http/request_parser.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using whorl::http::RequestParser;
using Event = RequestParser::Event;

std::string run(uint8_t config, std::string_view stream, const whorl::fuzz::Cuts& cuts) {
  whorl::http::RequestLimits limits;
  if (config & 1) {
    limits.maxRequestLine = 1 + config % 64;
    limits.maxHeadBytes = 16 + (config >> 1) % 128;
  }
  RequestParser parser(limits);
  std::string out;
  bool failed = false;
  bool inBody = false;
  cuts.forEach(stream, [&](std::string_view data) {
    while (!data.empty() && !failed) {
      size_t used = 0;
      Event e = parser.feed(data, &used);
      whorl::fuzz::check(used <= data.size(), "feed uses at most what it gets");
      whorl::fuzz::check(e != Event::kNeedMore || used == data.size(), "kNeedMore uses everything");
      data.remove_prefix(used);
      if (e != Event::kBody) inBody = false;
      switch (e) {
        case Event::kNeedMore:
          break;
        case Event::kRequest: {
          const auto& r = parser.request();
          whorl::fuzz::check(r.head.size() <= limits.maxHeadBytes, "a head fits the limit");
          auto host = r.field("host");
          out += "request '" + whorl::fuzz::escape(r.method) + "' '" +
                 whorl::fuzz::escape(r.target) + "' 1." + std::to_string(r.minorVersion) +
                 (r.keepAlive() ? " keep-alive" : " close") +
                 (r.contentLength ? " length " + std::to_string(*r.contentLength) : "") +
                 " path '" + whorl::fuzz::escape(r.path()) + "' host " +
                 (host ? "'" + whorl::fuzz::escape(*host) + "'" : "none") + "\nhead '" +
                 whorl::fuzz::escape(r.head) + "'\n";
          break;
        }
        case Event::kBody:
          whorl::fuzz::check(!parser.body().empty() && used > 0, "a body event carries bytes");
          // Body bytes come in whatever pieces the chunks make: one run per request.
          if (!inBody) out += "body '";
          if (inBody) out.resize(out.size() - 2);
          out += whorl::fuzz::escape(parser.body()) + "'\n";
          inBody = true;
          break;
        case Event::kError: {
          const auto& err = parser.error();
          whorl::fuzz::check(err.status >= 400 && err.status < 600 && !err.reason.empty(),
                             "an error has a status and a reason");
          out += "error " + std::to_string(err.status) + " " + std::string(err.reason) + "\n";
          size_t again = 0;
          whorl::fuzz::check(parser.feed("GET / HTTP/1.1\r\n", &again) == Event::kError,
                             "a failed parser stays failed");
          failed = true;
          break;
        }
      }
    }
  });
  if (!failed && parser.bodyRemaining() > 0) {
    out += "body missing " + std::to_string(parser.bodyRemaining()) + "\n";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view stream = whorl::fuzz::asText(data + 1, size - 1);
  whorl::fuzz::expectSameForEveryCut(stream, "HTTP requests", [&](const whorl::fuzz::Cuts& cuts) {
    return run(data[0], stream, cuts);
  });
  return 0;
}
