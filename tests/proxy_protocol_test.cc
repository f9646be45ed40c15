// ProxyHeaderParser: valid v1/v2 headers fed whole, byte by byte, split at every position and with
// payload behind them; malformed, truncated, oversized and mismatched input.
#include "framework/net/proxy_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "framework/base/address.h"

namespace whorl::net {
namespace {

using namespace std::string_literals;

const std::string kV2Sig = "\r\n\r\n\0\r\nQUIT\n"s;
// What a client sends first when there is no proxy in front: the start of a TLS 1.2 ClientHello.
// Also used as payload behind headers, with bytes (CR, LF, NUL, "PROXY ") that a sloppy parser
// might eat.
const std::string kClientHello =
    "\x16\x03\x01\x00\xc4\x01\x00\x00\xc0\x03\x03\r\n\0PROXY \r\n\r\n\0\r\nQUIT\n"s;

Address addr(const char* host, uint16_t port) { return Address::parse(host, port).value(); }

std::string be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

std::string v2(uint8_t versionCommand, uint8_t family, const std::string& body) {
  return kV2Sig + static_cast<char>(versionCommand) + static_cast<char>(family) +
         be16(static_cast<uint16_t>(body.size())) + body;
}

std::string ipv4Block(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  char a[4], b[4];
  EXPECT_EQ(inet_pton(AF_INET, src, a), 1);
  EXPECT_EQ(inet_pton(AF_INET, dst, b), 1);
  return std::string(a, 4) + std::string(b, 4) + be16(sport) + be16(dport);
}

std::string ipv6Block(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  char a[16], b[16];
  EXPECT_EQ(inet_pton(AF_INET6, src, a), 1);
  EXPECT_EQ(inet_pton(AF_INET6, dst, b), 1);
  return std::string(a, 16) + std::string(b, 16) + be16(sport) + be16(dport);
}

std::string tlv(uint8_t type, const std::string& value) {
  return static_cast<char>(type) + be16(static_cast<uint16_t>(value.size())) + value;
}

void expectSameHeader(const ProxyHeader& a, const ProxyHeader& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.local, b.local);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.destination, b.destination);
}

// Parses `header` every way it can arrive and checks that each agrees, storing the header in
// `*out`.
void checkEveryWay(ProxyProtocolMode mode, const std::string& header, ProxyHeader* out) {
  const std::string payload = kClientHello;
  ProxyHeader& first = *out;
  {
    SCOPED_TRACE("all at once");
    ProxyHeaderParser parser(mode);
    auto p = parser.feed(header);
    EXPECT_TRUE(p.isOk()) << p.status().message();
    if (!p.isOk()) return;
    EXPECT_FALSE(p->needMore());
    if (p->needMore()) return;
    EXPECT_EQ(p->consumed, header.size());
    first = *p->header;
  }
  {
    SCOPED_TRACE("with payload in the same chunk");
    ProxyHeaderParser parser(mode);
    std::string chunk = header + payload;
    auto p = parser.feed(chunk);
    EXPECT_TRUE(p.isOk()) << p.status().message();
    if (p.isOk() && !p->needMore()) {
      EXPECT_EQ(p->consumed, header.size());
      EXPECT_EQ(std::string_view(chunk).substr(p->consumed), payload);
      expectSameHeader(*p->header, first);
    } else {
      ADD_FAILURE() << "not complete";
    }
  }
  {
    SCOPED_TRACE("one byte at a time");
    ProxyHeaderParser parser(mode);
    for (size_t i = 0; i < header.size(); ++i) {
      auto p = parser.feed(std::string_view(header).substr(i, 1));
      ASSERT_TRUE(p.isOk()) << "byte " << i << ": " << p.status().message();
      EXPECT_EQ(p->consumed, 1u) << "byte " << i;
      EXPECT_EQ(p->needMore(), i + 1 < header.size()) << "byte " << i;
      if (!p->needMore()) expectSameHeader(*p->header, first);
    }
    // Everything after the header is payload, returned untouched.
    auto p = parser.feed(payload);
    EXPECT_TRUE(p.isOk());
    if (p.isOk()) {
      EXPECT_FALSE(p->needMore());
      EXPECT_EQ(p->consumed, 0u);
    }
  }
  for (size_t k = 0; k <= header.size(); ++k) {
    SCOPED_TRACE("split at " + std::to_string(k));
    ProxyHeaderParser parser(mode);
    auto p1 = parser.feed(std::string_view(header).substr(0, k));
    ASSERT_TRUE(p1.isOk()) << p1.status().message();
    EXPECT_EQ(p1->consumed, k);
    if (k < header.size()) {
      // Never a false success on a truncated header.
      EXPECT_TRUE(p1->needMore());
      std::string rest = header.substr(k) + payload;
      auto p2 = parser.feed(rest);
      ASSERT_TRUE(p2.isOk()) << p2.status().message();
      ASSERT_FALSE(p2->needMore());
      EXPECT_EQ(p2->consumed, header.size() - k);
      EXPECT_EQ(rest.substr(p2->consumed), payload);
      expectSameHeader(*p2->header, first);
    } else {
      ASSERT_FALSE(p1->needMore());
      expectSameHeader(*p1->header, first);
    }
  }
}

ProxyHeader parseEveryWay(ProxyProtocolMode mode, const std::string& header) {
  ProxyHeader h;
  checkEveryWay(mode, header, &h);
  return h;
}

// An error message is for people: no raw control bytes, and only a few bytes of input.
void expectReadable(const std::string& message) {
  EXPECT_LT(message.size(), 240u) << message;
  for (char c : message) {
    auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 && u < 0x7f) << "raw byte " << int(u) << " in: " << message;
  }
}

// Feeds `input` whole and byte by byte; both must fail with `needle` in the message. Returns the
// index of the byte at which the byte-by-byte feed failed.
size_t expectError(ProxyProtocolMode mode, const std::string& input, const std::string& needle) {
  {
    ProxyHeaderParser parser(mode);
    auto p = parser.feed(input);
    EXPECT_FALSE(p.isOk()) << "accepted: " << input;
    if (p.isOk()) return 0;
    EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(p.status().message().find(needle), std::string::npos)
        << "message: " << p.status().message() << "\nwanted: " << needle;
    expectReadable(p.status().message());
    // Failure is final.
    auto again = parser.feed("PROXY UNKNOWN\r\n");
    EXPECT_FALSE(again.isOk());
    EXPECT_EQ(again.status().message(), p.status().message());
  }
  ProxyHeaderParser parser(mode);
  for (size_t i = 0; i < input.size(); ++i) {
    auto p = parser.feed(std::string_view(input).substr(i, 1));
    if (!p.isOk()) {
      expectReadable(p.status().message());
      return i;
    }
    EXPECT_TRUE(p->needMore()) << "false success at byte " << i;
    if (!p->needMore()) return i;
  }
  ADD_FAILURE() << "byte by byte never failed: " << input;
  return input.size();
}

constexpr auto kV1 = ProxyProtocolMode::kV1;
constexpr auto kV2 = ProxyProtocolMode::kV2;
constexpr auto kAny = ProxyProtocolMode::kAny;

// ---------------------------------------------------------------------------------------------
// Modes

TEST(ProxyProtocolMode, ParsesAndPrints) {
  for (auto mode : {ProxyProtocolMode::kOff, kV1, kV2, kAny}) {
    auto parsed = parseProxyProtocolMode(toString(mode));
    ASSERT_TRUE(parsed.isOk());
    EXPECT_EQ(*parsed, mode);
  }
  auto bad = parseProxyProtocolMode("V3\n");
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(),
            "unknown PROXY protocol mode 'V3\\n'; expected off, v1, v2 or any");
}

TEST(ProxyHeaderParser, ModeOffRefusesToParse) {
  ProxyHeaderParser parser(ProxyProtocolMode::kOff);
  EXPECT_FALSE(parser.feed("PROXY UNKNOWN\r\n").isOk());
}

// ---------------------------------------------------------------------------------------------
// v1, valid

TEST(ProxyV1, Tcp4) {
  for (auto mode : {kV1, kAny}) {
    auto h = parseEveryWay(mode, "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    EXPECT_EQ(h.version, 1);
    EXPECT_FALSE(h.local);
    EXPECT_EQ(h.source, addr("192.168.0.1", 56324));
    EXPECT_EQ(h.destination, addr("192.168.0.11", 443));
  }
}

TEST(ProxyV1, Tcp4Extremes) {
  auto h = parseEveryWay(kV1, "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n");
  EXPECT_EQ(h.source, addr("0.0.0.0", 0));
  EXPECT_EQ(h.destination, addr("255.255.255.255", 65535));
}

TEST(ProxyV1, Tcp6) {
  auto h = parseEveryWay(kAny, "PROXY TCP6 2001:db8::1 ::1 65535 8443\r\n");
  EXPECT_EQ(h.version, 1);
  EXPECT_FALSE(h.local);
  ASSERT_TRUE(h.source.has_value());
  EXPECT_TRUE(h.source->isIPv6());
  EXPECT_EQ(h.source, addr("2001:db8::1", 65535));
  EXPECT_EQ(h.destination, addr("::1", 8443));
}

TEST(ProxyV1, Tcp6LongestLineAndMappedAddress) {
  std::string f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  std::string line = "PROXY TCP6 " + f + " " + f + " 65535 65535\r\n";
  ASSERT_EQ(line.size(), 104u);
  auto h = parseEveryWay(kV1, line);
  EXPECT_EQ(h.source, addr(f.c_str(), 65535));

  h = parseEveryWay(kV1, "PROXY TCP6 ::ffff:10.0.0.1 ABCD::EF 1 2\r\n");
  EXPECT_EQ(h.source, addr("::ffff:10.0.0.1", 1));
  EXPECT_EQ(h.destination, addr("abcd::ef", 2));
}

TEST(ProxyV1, UnknownIsLocal) {
  auto h = parseEveryWay(kV1, "PROXY UNKNOWN\r\n");
  EXPECT_EQ(h.version, 1);
  EXPECT_TRUE(h.local);
  EXPECT_FALSE(h.source.has_value());
  EXPECT_FALSE(h.destination.has_value());

  // The spec's worst case: 107 bytes, and whatever follows UNKNOWN is ignored.
  std::string f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  std::string longest = "PROXY UNKNOWN " + f + " " + f + " 65535 65535\r\n";
  ASSERT_EQ(longest.size(), 107u);
  h = parseEveryWay(kAny, longest);
  EXPECT_TRUE(h.local);
  EXPECT_TRUE(parseEveryWay(kV1, "PROXY UNKNOWN whatever  is here\r\n").local);
}

// ---------------------------------------------------------------------------------------------
// v1, malformed

TEST(ProxyV1, BadAddresses) {
  expectError(kV1, "PROXY TCP4 192.168.0.256 10.0.0.1 1 2\r\n",
              "source address '192.168.0.256' is not an IPv4 address");
  expectError(kV1, "PROXY TCP4 1.2.3 10.0.0.1 1 2\r\n", "source address '1.2.3'");
  expectError(kV1, "PROXY TCP4 1.2.3.4.5 10.0.0.1 1 2\r\n", "source address");
  expectError(kV1, "PROXY TCP4 1.2.3.4 10.0.0.x 1 2\r\n", "destination address '10.0.0.x'");
  // Leading zeros could be read as octal: the spec forbids them.
  expectError(kV1, "PROXY TCP4 01.2.3.4 10.0.0.1 1 2\r\n", "source address '01.2.3.4'");
  expectError(kV1, "PROXY TCP6 [::1] ::1 1 2\r\n", "source address '[::1]'");
  expectError(kV1, "PROXY TCP6 fe80::1%lo ::1 1 2\r\n", "source address 'fe80::1%lo'");
  expectError(kV1, "PROXY TCP6 ::1 1::2::3 1 2\r\n", "destination address '1::2::3'");
}

TEST(ProxyV1, AddressOfTheWrongFamily) {
  expectError(kV1, "PROXY TCP4 ::1 ::1 1 2\r\n", "is not an IPv4 address, as TCP4 requires");
  expectError(kV1, "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
              "source address '1.2.3.4' is not an IPv6 address, as TCP6 requires");
  expectError(kV1, "PROXY TCP6 ::1 5.6.7.8 1 2\r\n", "destination address '5.6.7.8'");
}

TEST(ProxyV1, BadPorts) {
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n",
              "source port '70000' is not a decimal number 0-65535");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "destination port '65536'");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", "source port '+80'");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "source port '-1'");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", "source port '080'");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n", "source port '0x50'");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", "destination port '2a'");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 0000000000000443\r\n", "destination port");
}

TEST(ProxyV1, LineEndings) {
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "bare LF; CRLF is required");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR not followed by LF");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "CR not followed by LF");
  expectError(kV1, "PROXY TCP4\t1.2.3.4 5.6.7.8 1 2\r\n", "byte 0x09 is not printable ASCII");
  expectError(kV1, "PROXY TCP4 1.2.3.4\xff 5.6.7.8 1 2\r\n", "byte 0xff is not printable ASCII");
  // A bare LF fails on that byte, not later.
  EXPECT_EQ(expectError(kV1, "PROXY UNKNOWN\nmore bytes", "bare LF"), 13u);
}

TEST(ProxyV1, Spacing) {
  expectError(kV1, "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "empty field");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "empty field");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "empty field");
  expectError(kV1, "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol '' is not TCP4, TCP6 or UNKNOWN");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "4 fields after PROXY; TCP4 needs 5");
  expectError(kV1, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "more than 5 fields");
  expectError(kV1, "PROXY TCP4\r\n", "1 fields after PROXY");
}

TEST(ProxyV1, Keywords) {
  // Lower case fails on the very first byte.
  EXPECT_EQ(expectError(kV1, "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
                        "expected a PROXY protocol v1 header, got 'proxy TCP4 1.2.3...'"),
            0u);
  expectError(kV1, "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol 'tcp4'");
  expectError(kV1, "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "protocol 'TCP5'");
  expectError(kV1, "PROXY UNKNOWNX\r\n", "protocol 'UNKNOWNX'");
  expectError(kV1, "PROXY \r\n", "protocol ''");
  EXPECT_EQ(expectError(kV1, "PROXY\r\n", "got 'PROXY\\r\\n'"), 5u);
  EXPECT_EQ(expectError(kAny, "PROXYTCP4", "expected a PROXY protocol header"), 5u);
}

TEST(ProxyV1, NoCrlfWithin107BytesFailsWithoutWaiting) {
  std::string line = "PROXY UNKNOWN " + std::string(200, 'f');
  // Fails at byte 107 (index 106): no 108th byte can end a line within the limit.
  EXPECT_EQ(expectError(kV1, line, "no CRLF within 107 bytes"), 106u);
  // Exactly 107 bytes without CRLF: an error, not a wait for more.
  ProxyHeaderParser parser(kV1);
  EXPECT_FALSE(parser.feed(line.substr(0, 107)).isOk());
  // 106 bytes without CRLF may still become a valid line.
  ProxyHeaderParser parser2(kV1);
  auto p = parser2.feed(line.substr(0, 106));
  ASSERT_TRUE(p.isOk());
  EXPECT_TRUE(p->needMore());
  // A 108-byte line with its CRLF is one too long.
  std::string f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  std::string tooLong = "PROXY UNKNOWN " + f + " " + f + " 65535 655350\r\n";
  ASSERT_EQ(tooLong.size(), 108u);
  expectError(kV1, tooLong, "no CRLF within 107 bytes");
}

// ---------------------------------------------------------------------------------------------
// v2, valid

TEST(ProxyV2, ProxyIPv4) {
  for (auto mode : {kV2, kAny}) {
    auto h = parseEveryWay(mode, v2(0x21, 0x11, ipv4Block("203.0.113.7", "10.0.0.2", 51234, 443)));
    EXPECT_EQ(h.version, 2);
    EXPECT_FALSE(h.local);
    EXPECT_EQ(h.source, addr("203.0.113.7", 51234));
    EXPECT_EQ(h.destination, addr("10.0.0.2", 443));
  }
}

TEST(ProxyV2, ProxyIPv6) {
  auto h = parseEveryWay(kV2, v2(0x21, 0x21, ipv6Block("2001:db8::7", "fd00::2", 65535, 0)));
  EXPECT_EQ(h.version, 2);
  EXPECT_FALSE(h.local);
  EXPECT_EQ(h.source, addr("2001:db8::7", 65535));
  EXPECT_EQ(h.destination, addr("fd00::2", 0));
}

TEST(ProxyV2, LocalHasNoAddresses) {
  auto h = parseEveryWay(kV2, v2(0x20, 0x00, ""));
  EXPECT_EQ(h.version, 2);
  EXPECT_TRUE(h.local);
  EXPECT_FALSE(h.source.has_value());
  EXPECT_FALSE(h.destination.has_value());
  // LOCAL with addresses: they are skipped (counted by the length) and ignored.
  h = parseEveryWay(kAny, v2(0x20, 0x11, ipv4Block("1.2.3.4", "5.6.7.8", 1, 2)));
  EXPECT_TRUE(h.local);
  EXPECT_FALSE(h.source.has_value());
  // LOCAL ignores the family byte, even one PROXY may not carry.
  EXPECT_TRUE(parseEveryWay(kV2, v2(0x20, 0x45, "xyz")).local);
}

TEST(ProxyV2, TlvsAreSkipped) {
  std::string aws = "\x01vpce-0123456789abcdef0";  // PP2_SUBTYPE_AWS_VPCE_ID
  std::string body = ipv4Block("198.51.100.9", "10.1.2.3", 40000, 8443) + tlv(0x01, "h2") +
                     tlv(0x02, "example.com") + tlv(0xEA, aws) + tlv(0x04, std::string(64, '\0'));
  auto h = parseEveryWay(kAny, v2(0x21, 0x11, body));
  EXPECT_FALSE(h.local);
  EXPECT_EQ(h.source, addr("198.51.100.9", 40000));
  EXPECT_EQ(h.destination, addr("10.1.2.3", 8443));

  std::string body6 = ipv6Block("::1", "::2", 1, 2) + tlv(0x05, "unique-id");
  h = parseEveryWay(kV2, v2(0x21, 0x21, body6));
  EXPECT_EQ(h.source, addr("::1", 1));
}

TEST(ProxyV2, UnspecUdpAndUnixFallBackToLocal) {
  // The spec: a receiver that does not implement a family falls back to UNSPEC, i.e. uses the
  // connection's real endpoints.
  EXPECT_TRUE(parseEveryWay(kV2, v2(0x21, 0x00, "")).local);
  EXPECT_TRUE(parseEveryWay(kV2, v2(0x21, 0x00, "ignored")).local);
  EXPECT_TRUE(parseEveryWay(kV2, v2(0x21, 0x12, ipv4Block("1.2.3.4", "5.6.7.8", 53, 53))).local);
  EXPECT_TRUE(parseEveryWay(kV2, v2(0x21, 0x22, ipv6Block("::1", "::2", 53, 53))).local);
  std::string paths = std::string("/run/haproxy.sock") + std::string(91, '\0') + "/run/app.sock" +
                      std::string(95, '\0');
  ASSERT_EQ(paths.size(), 216u);
  auto h = parseEveryWay(kAny, v2(0x21, 0x31, paths));
  EXPECT_EQ(h.version, 2);
  EXPECT_TRUE(h.local);
  EXPECT_FALSE(h.source.has_value());
  EXPECT_TRUE(parseEveryWay(kV2, v2(0x21, 0x32, paths + tlv(0x01, "h2"))).local);
}

TEST(ProxyV2, HeaderOfExactlyTheLimit) {
  std::string body = ipv4Block("1.2.3.4", "5.6.7.8", 1, 2);
  body += tlv(0x04, std::string(4096 - 16 - 12 - 3, 'x'));
  std::string header = v2(0x21, 0x11, body);
  ASSERT_EQ(header.size(), 4096u);
  ProxyHeaderParser parser(kV2);
  auto p = parser.feed(header + "payload");
  ASSERT_TRUE(p.isOk()) << p.status().message();
  ASSERT_FALSE(p->needMore());
  EXPECT_EQ(p->consumed, 4096u);
  EXPECT_EQ(p->header->source, addr("1.2.3.4", 1));
}

// ---------------------------------------------------------------------------------------------
// v2, malformed

TEST(ProxyV2, OverTheLimitFailsOnTheLengthField) {
  std::string body = ipv4Block("1.2.3.4", "5.6.7.8", 1, 2) + std::string(4096 - 16 - 12 + 1, 'x');
  std::string header = v2(0x21, 0x11, body);
  ASSERT_EQ(header.size(), 4097u);
  EXPECT_EQ(expectError(kV2, header, "PROXY v2 header of 4097 bytes exceeds the 4096-byte limit"),
            15u);
  // Only the 16 fixed bytes are needed to decide.
  ProxyHeaderParser parser(kAny);
  auto p = parser.feed(kV2Sig + "\x21\x11\xff\xff"s);
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().message(), "PROXY v2 header of 65551 bytes exceeds the 4096-byte limit");
}

TEST(ProxyV2, WrongVersionOrCommandFailsOnByte13) {
  std::string body = ipv4Block("1.2.3.4", "5.6.7.8", 1, 2);
  EXPECT_EQ(expectError(kV2, v2(0x11, 0x11, body), "malformed PROXY v2 header: version 1"), 12u);
  EXPECT_EQ(expectError(kAny, v2(0x31, 0x11, body), "version 3"), 12u);
  EXPECT_EQ(expectError(kV2, v2(0x01, 0x11, body), "version 0"), 12u);
  EXPECT_EQ(expectError(kV2, v2(0x22, 0x11, body), "command 2 is neither LOCAL (0) nor PROXY (1)"),
            12u);
  EXPECT_EQ(expectError(kV2, v2(0x2f, 0x11, body), "command 15"), 12u);
}

TEST(ProxyV2, UndefinedFamilyFailsOnByte14) {
  for (uint8_t family : {0x01, 0x10, 0x13, 0x20, 0x33, 0x41, 0xff}) {
    SCOPED_TRACE(family);
    EXPECT_EQ(expectError(kV2, v2(0x21, family, std::string(216, '\0')),
                          "is not one the spec defines"),
              13u);
  }
}

TEST(ProxyV2, AddressBlockTooShort) {
  expectError(kV2, v2(0x21, 0x11, std::string(11, '\0')),
              "TCP over IPv4 needs 12 bytes of addresses, the header has 11");
  expectError(kV2, v2(0x21, 0x21, ipv4Block("1.2.3.4", "5.6.7.8", 1, 2)),
              "TCP over IPv6 needs 36 bytes of addresses, the header has 12");
  expectError(kV2, v2(0x21, 0x12, ""), "UDP over IPv4 needs 12");
  expectError(kV2, v2(0x21, 0x31, std::string(108, '\0')), "UNIX stream needs 216");
}

TEST(ProxyV2, BrokenSignatureFailsOnTheFirstWrongByte) {
  EXPECT_EQ(expectError(kV2, "\r\n\r\nHELLO"s, "expected a PROXY protocol v2 header, got"), 4u);
  EXPECT_EQ(expectError(kAny, "\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00"s, "got '\\r\\n\\r\\n\\x00"),
            10u);
}

// ---------------------------------------------------------------------------------------------
// Something other than the expected header

TEST(ProxyMismatch, V1ModeGetsV2) {
  std::string header = v2(0x21, 0x11, ipv4Block("1.2.3.4", "5.6.7.8", 1, 2));
  EXPECT_EQ(expectError(kV1, header, "expected a PROXY protocol v1 header, got a PROXY protocol v2 "
                                     "header (the load balancer sends v2: set this listener's "
                                     "PROXY protocol mode to v2 or any)"),
            0u);
}

TEST(ProxyMismatch, V2ModeGetsV1) {
  EXPECT_EQ(expectError(kV2, "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
                        "expected a PROXY protocol v2 header, got a PROXY protocol v1 header (the "
                        "load balancer sends v1: set this listener's PROXY protocol mode to v1 or "
                        "any)"),
            0u);
}

TEST(ProxyMismatch, TlsClientHelloWithoutHeaderFailsOnTheFirstByte) {
  for (auto [mode, expected] : std::vector<std::pair<ProxyProtocolMode, std::string>>{
           {kV1, "expected a PROXY protocol v1 header"},
           {kV2, "expected a PROXY protocol v2 header"},
           {kAny, "expected a PROXY protocol header"}}) {
    std::string message = expected +
                          ", got a TLS handshake (is the load balancer sending PROXY protocol?)";
    EXPECT_EQ(expectError(mode, kClientHello, message), 0u);
    ProxyHeaderParser parser(mode);
    auto p = parser.feed("\x16");
    ASSERT_FALSE(p.isOk());
    EXPECT_EQ(p.status().message(), message);
  }
}

TEST(ProxyMismatch, PlainHttpRequest) {
  std::string request = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
  EXPECT_EQ(expectError(kV1, request,
                        "expected a PROXY protocol v1 header, got a plain HTTP request "
                        "'GET / HTTP/1.1\\r\\n...' (is the load balancer sending PROXY protocol?)"),
            0u);
  // POST and PRI share the first byte with PROXY: they fail on the byte that differs.
  EXPECT_EQ(expectError(kAny, "POST /upload HTTP/1.1\r\n", "got a plain HTTP request 'POST"), 1u);
  EXPECT_EQ(expectError(kV1, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "got a plain HTTP request 'PRI"),
            2u);
  expectError(kV2, "SSH-2.0-OpenSSH_9.6\r\n", "got an SSH handshake");
}

TEST(ProxyMismatch, GarbageIsQuotedShortAndEscaped) {
  std::string garbage = "\x01\x02\x7f\xff'\\" + std::string(300, 'A');
  ProxyHeaderParser parser(kAny);
  auto p = parser.feed(garbage);
  ASSERT_FALSE(p.isOk());
  EXPECT_EQ(p.status().message(),
            "expected a PROXY protocol header, got '\\x01\\x02\\x7f\\xff\\'\\\\AAAAAAAAAA...' "
            "(is the load balancer sending PROXY protocol?)");
  expectReadable(p.status().message());
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

TEST(ProxyHeaderParser, EmptyFeedsAndFeedsAfterTheHeader) {
  ProxyHeaderParser parser(kAny);
  auto p = parser.feed("");
  ASSERT_TRUE(p.isOk());
  EXPECT_TRUE(p->needMore());
  EXPECT_EQ(p->consumed, 0u);
  p = parser.feed("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n");
  ASSERT_TRUE(p.isOk());
  ASSERT_FALSE(p->needMore());
  // Later bytes are all payload, even ones that look like another header.
  p = parser.feed("PROXY TCP4 9.9.9.9 9.9.9.9 9 9\r\n");
  ASSERT_TRUE(p.isOk());
  ASSERT_FALSE(p->needMore());
  EXPECT_EQ(p->consumed, 0u);
  EXPECT_EQ(p->header->source, addr("1.2.3.4", 1));
  p = parser.feed("");
  ASSERT_TRUE(p.isOk());
  EXPECT_FALSE(p->needMore());
}

TEST(ProxyHeaderParser, TruncatedHeadersNeedMore) {
  std::string f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  std::vector<std::string> headers = {
      "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
      "PROXY UNKNOWN " + f + " " + f + " 65535 65535\r\n",
      v2(0x21, 0x21, ipv6Block("::1", "::2", 1, 2) + tlv(0x01, "http/1.1")),
      v2(0x20, 0x00, ""),
  };
  for (const auto& header : headers) {
    for (size_t k = 0; k < header.size(); ++k) {
      ProxyHeaderParser parser(kAny);
      auto p = parser.feed(std::string_view(header).substr(0, k));
      ASSERT_TRUE(p.isOk()) << k << ": " << p.status().message();
      EXPECT_TRUE(p->needMore()) << "false success on " << k << " of " << header.size() << " bytes";
      EXPECT_EQ(p->consumed, k);
    }
  }
}

}  // namespace
}  // namespace whorl::net
