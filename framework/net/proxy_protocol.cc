#include "framework/net/proxy_protocol.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace whorl::net {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr size_t kV2FixedSize = 16;  // signature, version/command, family/protocol, length
// The spec allows 16 + 65535 bytes. Real senders (HAProxy, AWS NLB, GCP) stay far below this;
// the cap keeps a hostile or broken peer from making us skip 64 KiB before seeing payload.
constexpr size_t kV2MaxSize = 4096;
constexpr size_t kMaxQuoted = 16;  // input bytes an error message may show

// Some input for an error message: quoted, escaped, and short, because input is attacker-written
// and messages end up in logs.
std::string quote(std::string_view bytes) {
  std::string out = "'";
  for (size_t i = 0; i < bytes.size() && i < kMaxQuoted; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  out += bytes.size() > kMaxQuoted ? "...'" : "'";
  return out;
}

std::string hexByte(uint8_t b) {
  char hex[5];
  std::snprintf(hex, sizeof(hex), "0x%02x", b);
  return hex;
}

Status malformedV1(const std::string& what) {
  return Status::invalidArgument("malformed PROXY v1 header: " + what);
}

Status malformedV2(const std::string& what) {
  return Status::invalidArgument("malformed PROXY v2 header: " + what);
}

const char* expectedName(ProxyProtocolMode mode) {
  switch (mode) {
    case ProxyProtocolMode::kV1:
      return "a PROXY protocol v1 header";
    case ProxyProtocolMode::kV2:
      return "a PROXY protocol v2 header";
    default:
      return "a PROXY protocol header";
  }
}

// Strict dotted quad: exactly four decimal numbers 0-255 without leading zeros (the spec forbids
// them so that nobody reads them as octal).
bool isCanonicalIPv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    int value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3) {
      value = value * 10 + (s[i] - '0');
      ++i;
    }
    size_t digits = i - start;
    if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0')) return false;
    if (++parts == 4) return i == s.size();
    if (i == s.size() || s[i] != '.') return false;
    ++i;
  }
}

// inet_pton does the real work; the character check keeps out what Address::parse would also
// accept but the spec does not: brackets, zone ids.
bool looksLikeIPv6(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           c == ':' || c == '.';
  });
}

// Decimal 0-65535, no sign, no leading zeros.
std::optional<uint16_t> parsePort(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint32_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

Result<Address> parseV1Address(std::string_view text, bool ipv6, uint16_t port, const char* which) {
  bool ok = ipv6 ? looksLikeIPv6(text) : isCanonicalIPv4(text);
  if (ok) {
    auto address = Address::parse(text, port);
    if (address && address->isIPv6() == ipv6) return address;
  }
  return malformedV1(std::string(which) + " address " + quote(text) + " is not an " +
                     (ipv6 ? "IPv6" : "IPv4") + " address, as " + (ipv6 ? "TCP6" : "TCP4") +
                     " requires");
}

// v2 family/protocol byte (spec 2.2): the combinations the spec defines, and how many bytes of
// addresses each one carries.
struct V2Family {
  uint8_t code;
  const char* name;
  size_t addressBytes;
};
constexpr V2Family kV2Families[] = {
    {0x00, "UNSPEC", 0},         {0x11, "TCP over IPv4", 12}, {0x12, "UDP over IPv4", 12},
    {0x21, "TCP over IPv6", 36}, {0x22, "UDP over IPv6", 36}, {0x31, "UNIX stream", 216},
    {0x32, "UNIX datagram", 216},
};

const V2Family* findV2Family(uint8_t code) {
  for (const auto& f : kV2Families) {
    if (f.code == code) return &f;
  }
  return nullptr;
}

ProxyHeader localHeader(int version) {
  ProxyHeader header;
  header.version = version;
  header.local = true;
  return header;
}

Address ipv4Address(const char* addr, const char* port) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  std::memcpy(&sin.sin_addr, addr, 4);
  std::memcpy(&sin.sin_port, port, 2);  // both sides are network byte order
  return Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
}

Address ipv6Address(const char* addr, const char* port) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  std::memcpy(&sin6.sin6_addr, addr, 16);
  std::memcpy(&sin6.sin6_port, port, 2);
  return Address::fromSockaddr(reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
}

}  // namespace

Result<ProxyProtocolMode> parseProxyProtocolMode(std::string_view text) {
  if (text == "off") return ProxyProtocolMode::kOff;
  if (text == "v1") return ProxyProtocolMode::kV1;
  if (text == "v2") return ProxyProtocolMode::kV2;
  if (text == "any") return ProxyProtocolMode::kAny;
  return Status::invalidArgument("unknown PROXY protocol mode " + quote(text) +
                                 "; expected off, v1, v2 or any");
}

const char* toString(ProxyProtocolMode mode) {
  switch (mode) {
    case ProxyProtocolMode::kOff:
      return "off";
    case ProxyProtocolMode::kV1:
      return "v1";
    case ProxyProtocolMode::kV2:
      return "v2";
    case ProxyProtocolMode::kAny:
      return "any";
  }
  return "?";
}

ProxyHeaderParser::ProxyHeaderParser(ProxyProtocolMode mode) : mode_(mode) {}

Status ProxyHeaderParser::fail(Status status) {
  phase_ = Phase::kFailed;
  failure_ = std::move(status);
  return failure_;
}

// Names what arrived instead of a header, from every byte at hand (a whole ClientHello or request
// line usually comes in one read), so the operator learns which side is misconfigured.
Status ProxyHeaderParser::startMismatch(std::string_view rest) const {
  char seen[kMaxQuoted + 1];
  size_t n = std::min(len_, sizeof(seen));
  std::memcpy(seen, buf_, n);
  size_t more = std::min(rest.size(), sizeof(seen) - n);
  std::memcpy(seen + n, rest.data(), more);
  std::string_view got(seen, n + more);

  std::string what;
  std::string hint = "is the load balancer sending PROXY protocol?";
  static constexpr std::string_view kHttpMethods[] = {
      "GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
      "PRI "};
  if (static_cast<unsigned char>(got[0]) == 0x16) {
    what = "a TLS handshake";
  } else if (got.starts_with(kV2Signature)) {
    what = "a PROXY protocol v2 header";
    hint = "the load balancer sends v2: set this listener's PROXY protocol mode to v2 or any";
  } else if (got.starts_with(kV1Prefix)) {
    what = "a PROXY protocol v1 header";
    hint = "the load balancer sends v1: set this listener's PROXY protocol mode to v1 or any";
  } else if (got.starts_with("SSH-")) {
    what = "an SSH handshake";
  } else if (std::any_of(std::begin(kHttpMethods), std::end(kHttpMethods),
                         [&](std::string_view m) { return got.starts_with(m); })) {
    what = "a plain HTTP request " + quote(got);
  } else {
    what = quote(got);
  }
  return Status::invalidArgument(std::string("expected ") + expectedName(mode_) + ", got " + what +
                                 " (" + hint + ")");
}

Result<ProxyHeaderParser::Progress> ProxyHeaderParser::feed(std::string_view data) {
  if (phase_ == Phase::kFailed) return failure_;
  if (phase_ == Phase::kDone) return Progress{header_, 0};
  if (mode_ == ProxyProtocolMode::kOff) {
    return fail(Status::invalidArgument("ProxyHeaderParser used with PROXY protocol mode off"));
  }

  size_t i = 0;
  while (i < data.size() && phase_ != Phase::kDone) {
    Status status;
    switch (phase_) {
      case Phase::kStart: {
        // Byte by byte against the v1 prefix and the v2 signature, so that the first byte that
        // fits neither fails at once, before the peer's handshake times out.
        char c = data[i];
        bool v1 = mode_ != ProxyProtocolMode::kV2 && (len_ == 0 || buf_[0] == kV1Prefix[0]);
        bool v2 = mode_ != ProxyProtocolMode::kV1 && (len_ == 0 || buf_[0] == kV2Signature[0]);
        if (v1 && c == kV1Prefix[len_]) {
          buf_[len_++] = c;
          if (len_ == kV1Prefix.size()) phase_ = Phase::kV1Line;
        } else if (v2 && c == kV2Signature[len_]) {
          buf_[len_++] = c;
          if (len_ == kV2Signature.size()) phase_ = Phase::kV2Fixed;
        } else {
          status = startMismatch(data.substr(i));
        }
        ++i;
        break;
      }
      case Phase::kV1Line:
        status = onV1Byte(data[i++]);
        break;
      case Phase::kV2Fixed:
        buf_[len_++] = data[i++];
        status = onV2FixedByte();
        break;
      case Phase::kV2Addresses: {
        size_t n = std::min(kV2FixedSize + v2AddressBytes_ - len_, data.size() - i);
        std::memcpy(buf_ + len_, data.data() + i, n);
        len_ += n;
        i += n;
        v2Remaining_ -= n;
        if (len_ == kV2FixedSize + v2AddressBytes_) finishV2Addresses();
        break;
      }
      case Phase::kV2Skip: {
        // TLVs (ALPN, authority, AWS VPC endpoint id, ...): nothing here needs them.
        size_t n = std::min(v2Remaining_, data.size() - i);
        i += n;
        v2Remaining_ -= n;
        if (v2Remaining_ == 0) phase_ = Phase::kDone;
        break;
      }
      case Phase::kDone:
      case Phase::kFailed:
        break;
    }
    if (!status) return fail(std::move(status));
  }
  if (phase_ == Phase::kDone) return Progress{header_, i};
  return Progress{std::nullopt, i};
}

Status ProxyHeaderParser::onV1Byte(char c) {
  auto u = static_cast<unsigned char>(c);
  char prev = buf_[len_ - 1];  // the prefix is buffered, so there is one
  buf_[len_++] = c;
  if (prev == '\r') {
    if (c != '\n') return malformedV1("CR not followed by LF");
    return parseV1Line();
  }
  if (c == '\n') return malformedV1("line ends in a bare LF; CRLF is required");
  if (c != '\r' && (u < 0x20 || u >= 0x7f)) {
    return malformedV1("byte " + hexByte(u) + " is not printable ASCII");
  }
  // 107 bytes without a complete CRLF: even the next byte cannot end a valid line.
  if (len_ == kMaxBuffered) {
    return malformedV1("no CRLF within " + std::to_string(kMaxBuffered) +
                       " bytes (the longest valid line)");
  }
  return Status::ok();
}

Status ProxyHeaderParser::parseV1Line() {
  // Between "PROXY " and CRLF: "TCP4 <src> <dst> <sport> <dport>", likewise TCP6, or "UNKNOWN"
  // followed by anything (which the spec says to ignore).
  std::string_view line(buf_ + kV1Prefix.size(), len_ - kV1Prefix.size() - 2);
  std::string_view protocol = line.substr(0, line.find(' '));
  if (protocol == "UNKNOWN") {
    header_ = localHeader(1);
    phase_ = Phase::kDone;
    return Status::ok();
  }
  if (protocol != "TCP4" && protocol != "TCP6") {
    return malformedV1("protocol " + quote(protocol) + " is not TCP4, TCP6 or UNKNOWN");
  }

  std::string_view fields[5];
  size_t count = 0;
  std::string_view rest = line;
  while (true) {
    size_t space = rest.find(' ');
    std::string_view field = rest.substr(0, space);
    if (field.empty()) {
      return malformedV1("empty field (fields are separated by exactly one space)");
    }
    if (count == 5) return malformedV1("more than 5 fields after PROXY");
    fields[count++] = field;
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  if (count != 5) {
    return malformedV1(std::to_string(count) + " fields after PROXY; " + std::string(protocol) +
                       " needs 5 (protocol, source, destination, source port, destination port)");
  }

  auto sourcePort = parsePort(fields[3]);
  if (!sourcePort) {
    return malformedV1("source port " + quote(fields[3]) + " is not a decimal number 0-65535");
  }
  auto destinationPort = parsePort(fields[4]);
  if (!destinationPort) {
    return malformedV1("destination port " + quote(fields[4]) +
                       " is not a decimal number 0-65535");
  }
  bool ipv6 = protocol == "TCP6";
  auto source = parseV1Address(fields[1], ipv6, *sourcePort, "source");
  if (!source) return source.status();
  auto destination = parseV1Address(fields[2], ipv6, *destinationPort, "destination");
  if (!destination) return destination.status();

  header_ = ProxyHeader{.version = 1, .local = false, .source = *source, .destination = *destination};
  phase_ = Phase::kDone;
  return Status::ok();
}

// Checks each fixed byte as it arrives, so a bad version or family fails without waiting for the
// rest of the header.
Status ProxyHeaderParser::onV2FixedByte() {
  auto byte = [&](size_t index) { return static_cast<uint8_t>(buf_[index]); };
  bool local = (byte(12) & 0x0f) == 0x0;
  if (len_ == 13) {
    uint8_t version = byte(12) >> 4;
    if (version != 2) {
      return malformedV2("version " + std::to_string(version) + " (byte 13 is " +
                         hexByte(byte(12)) + "); only version 2 exists");
    }
    uint8_t command = byte(12) & 0x0f;
    if (command > 1) {
      return malformedV2("command " + std::to_string(command) + " is neither LOCAL (0) nor PROXY (1)");
    }
    return Status::ok();
  }
  // LOCAL ignores the family byte entirely, as the spec says.
  if (len_ == 14 && !local && findV2Family(byte(13)) == nullptr) {
    return malformedV2("address family and protocol byte " + hexByte(byte(13)) +
                       " is not one the spec defines");
  }
  if (len_ < kV2FixedSize) return Status::ok();

  size_t length = (size_t{byte(14)} << 8) | byte(15);
  size_t total = kV2FixedSize + length;
  if (total > kV2MaxSize) {
    return Status::invalidArgument("PROXY v2 header of " + std::to_string(total) +
                                   " bytes exceeds the " + std::to_string(kV2MaxSize) +
                                   "-byte limit");
  }
  v2Remaining_ = length;
  v2AddressBytes_ = 0;
  header_ = localHeader(2);
  if (!local) {
    const V2Family* family = findV2Family(byte(13));
    if (length < family->addressBytes) {
      return malformedV2(std::string(family->name) + " needs " +
                         std::to_string(family->addressBytes) + " bytes of addresses, the header has " +
                         std::to_string(length));
    }
    // Only TCP addresses are kept; UNSPEC, UDP and UNIX stay local (see ProxyHeader::local).
    if (family->code == 0x11 || family->code == 0x21) {
      v2AddressBytes_ = static_cast<uint8_t>(family->addressBytes);
    }
  }
  if (v2AddressBytes_ > 0) {
    phase_ = Phase::kV2Addresses;
  } else {
    phase_ = v2Remaining_ > 0 ? Phase::kV2Skip : Phase::kDone;
  }
  return Status::ok();
}

void ProxyHeaderParser::finishV2Addresses() {
  const char* a = buf_ + kV2FixedSize;
  if (v2AddressBytes_ == 12) {
    header_.source = ipv4Address(a, a + 8);
    header_.destination = ipv4Address(a + 4, a + 10);
  } else {
    header_.source = ipv6Address(a, a + 32);
    header_.destination = ipv6Address(a + 16, a + 34);
  }
  header_.local = false;
  phase_ = v2Remaining_ > 0 ? Phase::kV2Skip : Phase::kDone;
}

}  // namespace whorl::net
