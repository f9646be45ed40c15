// Fuzz target: endpoint description strings (framework/endpoint/description.h), what an operator
// writes in --listen and config files ("ssl:8443:privateKey=key.pem:interface=\:\:1").
//
// A description is parsed whole, so instead of cutting it the target checks that parsing is a
// function of the text: a parsed description written back with escapes parses to the same parts,
// and server specs for tcp:/tcp6: resolve the same way twice. (ssl: specs read files the text
// names, and a fuzzer must not read /dev/zero; their parsing is covered by parseDescription.)
#include <cstdint>
#include <string>
#include <string_view>

#include "framework/endpoint/description.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using whorl::endpoint::Description;

std::string escaped(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == ':' || c == '=') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string show(const Description& d) {
  std::string out = "type '" + whorl::fuzz::escape(d.type) + "'";
  for (const auto& a : d.args) out += " arg '" + whorl::fuzz::escape(a) + "'";
  for (const auto& [k, v] : d.kwargs) {
    out += " kwarg '" + whorl::fuzz::escape(k) + "'='" + whorl::fuzz::escape(v) + "'";
  }
  return out;
}

std::string specResult(std::string_view text) {
  auto spec = whorl::endpoint::serverSpecFromString(text);
  if (!spec) return "error: " + spec.status().message();
  whorl::fuzz::check(!spec->tls.has_value(), "tcp: and tcp6: specs have no TLS options");
  whorl::fuzz::check(spec->description == text, "a spec keeps the text it came from");
  return "family " + std::to_string(spec->family) + " port " + std::to_string(spec->port);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = whorl::fuzz::asText(data, size);
  auto d = whorl::endpoint::parseDescription(text);
  if (!d) {
    whorl::fuzz::check(!d.status().message().empty(), "an error has a message");
    auto again = whorl::endpoint::parseDescription(text);
    whorl::fuzz::check(!again && again.status().message() == d.status().message(),
                       "parsing is deterministic");
  } else {
    whorl::fuzz::check(!d->type.empty(), "a description has a type");
    std::string canonical = escaped(d->type);
    for (const auto& a : d->args) canonical += ":" + escaped(a);
    for (const auto& [k, v] : d->kwargs) {
      whorl::fuzz::check(d->kwarg(k) == &v, "keys are unique and found");
      canonical += ":" + escaped(k) + "=" + escaped(v);
    }
    auto round = whorl::endpoint::parseDescription(canonical);
    if (!round) {
      std::fprintf(stderr, "re-escaped '%s' fails: %s\n", whorl::fuzz::escape(canonical).c_str(),
                   round.status().message().c_str());
      std::abort();
    }
    if (show(*round) != show(*d)) {
      std::fprintf(stderr, "round trip differs:\n%s\n%s\n", show(*d).c_str(), show(*round).c_str());
      std::abort();
    }
    if (d->type != "ssl") {
      std::string first = specResult(text);
      whorl::fuzz::check(first == specResult(text), "server specs are deterministic");
    }
  }
  return 0;
}
