// Fuzz target: the PROXY protocol v1/v2 parser (framework/net/proxy_protocol.h), what the first
// bytes of a connection on a PROXY listener feed it.
//
// Input: one byte choosing the mode (v1, v2, any), then the bytes a peer sends. Each way of
// cutting them must give the same header, the same split between header and payload, or the
// same error; after a result, further input must not change it.
#include <cstdint>
#include <string>
#include <string_view>

#include "framework/net/proxy_protocol.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using whorl::net::ProxyHeaderParser;
using whorl::net::ProxyProtocolMode;

std::string describe(const whorl::net::ProxyHeader& h) {
  std::string out = "v" + std::to_string(h.version) + (h.local ? " local" : "");
  whorl::fuzz::check(h.local != h.source.has_value(), "source is set exactly when not local");
  if (h.source) out += " src " + h.source->toString();
  if (h.destination) out += " dst " + h.destination->toString();
  return out;
}

// The error as compared between feedings. A header that does not even start right ("expected a
// PROXY protocol header, got ...") fails on its first wrong byte and then names what the rest of
// that read holds (a TLS handshake, an HTTP request), on purpose: the operator learns what the
// peer sends instead. That tail depends on how the bytes arrived, the failure itself does not.
std::string comparable(const std::string& message) {
  if (message.rfind("expected ", 0) != 0) return message;
  size_t got = message.find(", got ");
  return got == std::string::npos ? message : message.substr(0, got) + ", got (what was read)";
}

// Feeds `stream` cut as `cuts`: the header, where the payload starts, and the payload; or the
// error and where it came.
std::string run(ProxyProtocolMode mode, std::string_view stream, const whorl::fuzz::Cuts& cuts) {
  ProxyHeaderParser parser(mode);
  std::string result;
  size_t offset = 0;
  std::string payload;
  cuts.forEach(stream, [&](std::string_view chunk) {
    if (!result.empty()) {
      // Done or failed: later calls repeat the outcome and consume nothing.
      auto again = parser.feed(chunk);
      if (again) {
        whorl::fuzz::check(!again->needMore() && again->consumed == 0,
                           "after the header, feed() consumes nothing");
      }
      payload.append(chunk);
      offset += chunk.size();
      return;
    }
    auto p = parser.feed(chunk);
    if (!p) {
      whorl::fuzz::check(!p.status().message().empty(), "an error has a message");
      result = "error: " + comparable(p.status().message());
    } else if (p->needMore()) {
      whorl::fuzz::check(p->consumed == chunk.size(), "needMore consumes the whole chunk");
    } else {
      whorl::fuzz::check(p->consumed <= chunk.size(), "consumed fits the chunk");
      result =
          "header " + describe(*p->header) + " ends at " + std::to_string(offset + p->consumed);
      payload.append(chunk.substr(p->consumed));
    }
    offset += chunk.size();
  });
  if (result.empty()) return "incomplete";
  if (result.rfind("header", 0) == 0) result += " payload '" + whorl::fuzz::escape(payload) + "'";
  return result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr ProxyProtocolMode kModes[] = {ProxyProtocolMode::kV1, ProxyProtocolMode::kV2,
                                                 ProxyProtocolMode::kAny};
  ProxyProtocolMode mode = kModes[data[0] % 3];
  std::string_view stream = whorl::fuzz::asText(data + 1, size - 1);
  whorl::fuzz::expectSameForEveryCut(
      stream, "PROXY header parse",
      [&](const whorl::fuzz::Cuts& cuts) { return run(mode, stream, cuts); });
  return 0;
}
