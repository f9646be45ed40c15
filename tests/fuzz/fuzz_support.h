// Helpers for the fuzz targets in tests/fuzz: the ways one input is cut into chunks, and the
// check that aborts (what libFuzzer and the replay test report) when two feedings disagree.
//
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
//     std::string_view input = fuzz::asText(data, size);
//     fuzz::expectSameForEveryCut(input, "parse", [&](const fuzz::Cuts& cuts) {
//       return run(input, cuts);                     // feeds cuts.forEach(input, ...); a summary
//     });
//     return 0;
//   }
//
// Every target feeds its input whole, one byte at a time and in chunks whose sizes come from a
// generator seeded with a hash of the input, so a run is deterministic and a crash replays. The
// helpers own nothing.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace whorl::fuzz {

inline std::string_view asText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// One way to cut an input: the chunk sizes in order (their sum is the input's size).
struct Cuts {
  const char* name;  // "whole", "bytes" or "random"
  std::vector<size_t> sizes;
  bool whole() const { return std::string_view(name) == "whole"; }

  // Calls fn(chunk) for each chunk of `input`.
  template <class Fn>
  void forEach(std::string_view input, Fn&& fn) const {
    size_t pos = 0;
    for (size_t n : sizes) {
      fn(input.substr(pos, n));
      pos += n;
    }
  }
};

// FNV-1a: the seed of the random cuts.
inline uint64_t hashOf(std::string_view input) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : input) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Whole, byte by byte, and random chunks of 1..64 bytes (mostly small, sometimes large: the
// interesting splits are near the boundaries a parser keeps state across).
inline std::vector<Cuts> cutsFor(std::string_view input) {
  std::vector<Cuts> all;
  all.push_back({"whole", {input.size()}});
  Cuts bytes{"bytes", {}};
  bytes.sizes.assign(input.size(), 1);
  all.push_back(std::move(bytes));
  Cuts random{"random", {}};
  uint64_t x = hashOf(input) | 1;
  for (size_t left = input.size(); left > 0;) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t n = (x & 3) == 0 ? 1 + (x >> 8) % 64 : 1 + (x >> 8) % 8;
    if (n > left) n = left;
    random.sizes.push_back(n);
    left -= n;
  }
  all.push_back(std::move(random));
  return all;
}

// Aborts, printing both results, when a feeding disagrees with the whole one.
inline void expectSame(const std::string& whole, const std::string& other, const Cuts& cuts,
                       const char* what) {
  if (whole == other) return;
  std::fprintf(stderr,
               "fuzz: %s differs when the input is fed in %s chunks (%zu chunks)\n"
               "--- whole:\n%s\n--- %s:\n%s\n",
               what, cuts.name, cuts.sizes.size(), whole.c_str(), cuts.name, other.c_str());
  std::abort();
}

// Runs `run(cuts)` for every way of cutting `input` and aborts when a result differs from the
// whole input's.
template <class Run>
void expectSameForEveryCut(std::string_view input, const char* what, Run&& run) {
  std::string whole;
  for (const Cuts& cuts : cutsFor(input)) {
    std::string result = run(cuts);
    if (cuts.whole()) {
      whole = std::move(result);
    } else {
      expectSame(whole, result, cuts, what);
    }
  }
}

// Aborts with `why` when `ok` is false: a property every input must keep.
inline void check(bool ok, const char* why) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: property violated: %s\n", why);
  std::abort();
}

// Printable escaping for results that hold input bytes.
inline std::string escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace whorl::fuzz
