// ProxyHeaderParser: reads the HAProxy PROXY protocol header (v1 text or v2 binary) that a load
// balancer puts in front of a connection's first byte, to learn the real client's address.
// Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
//
//   ProxyHeaderParser parser(ProxyProtocolMode::kAny);
//   // for each chunk read from the socket, until the header is complete:
//   auto p = parser.feed(chunk);
//   if (!p) return abort(p.status());           // "expected a PROXY protocol v1 header, got ..."
//   if (p->needMore()) return;                  // every byte of `chunk` was header; read again
//   if (!p->header->local) peer = *p->header->source;
//   deliver(chunk.substr(p->consumed));         // the payload (e.g. a ClientHello), untouched
//
// A pure state machine: no I/O, no clock, no heap allocation short of an error message; bytes
// may arrive split anywhere. The parser copies what it must keep (at most 107 bytes: a v1 line, or
// a v2 prefix and addresses; v2 TLVs are counted and skipped, never stored), so `data` need only
// live for the call. The caller owns the parser (one per connection) and must bound how long it
// waits for a header: a sender that stalls mid-header is the caller's timeout, not the parser's.
//
// Only trusted load balancers may send this header: whoever can write it chooses the address the
// server believes. Enable it on listeners that only such proxies can reach.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "framework/base/address.h"
#include "framework/base/status.h"

namespace whorl::net {

enum class ProxyProtocolMode { kOff, kV1, kV2, kAny };

// "off", "v1", "v2" or "any" (the spellings toString returns).
Result<ProxyProtocolMode> parseProxyProtocolMode(std::string_view text);
const char* toString(ProxyProtocolMode mode);

struct ProxyHeader {
  int version = 0;  // 1 or 2
  // No addresses: use the socket's own. Set for a v1 "UNKNOWN" line, a v2 LOCAL command (the
  // proxy's health checks), and v2 PROXY with a family whose addresses an IP server cannot use
  // (UNSPEC, UDP, UNIX): the spec requires receivers to fall back to the real endpoints for those
  // rather than refuse them, and HAProxy itself does the same, so a proxy listening on a UNIX socket
  // still gets through.
  bool local = false;
  std::optional<Address> source;  // the real client; set exactly when !local
  std::optional<Address> destination;
};

class ProxyHeaderParser {
 public:
  struct Progress {
    // Empty while the header is incomplete; then every byte passed so far belongs to it.
    std::optional<ProxyHeader> header;
    // How many leading bytes of this call's `data` were header. Once the header is complete,
    // data.substr(consumed) is connection payload for the next layer.
    size_t consumed = 0;
    bool needMore() const { return !header.has_value(); }
  };

  // kV1, kV2 or kAny (which tells v1 from v2 by the first byte). With kOff, feed() fails: a
  // listener without PROXY protocol should not make a parser.
  explicit ProxyHeaderParser(ProxyProtocolMode mode);

  // Consumes bytes as they arrive. Fails (kInvalidArgument, a message for the operator, quoting
  // at most a few escaped input bytes) as soon as the input cannot be a valid header: on the first
  // byte off the v1 prefix or v2 signature (so a TLS ClientHello or HTTP request sent without a
  // header fails on its first byte or two), a bad v2 version, command, family or length on that
  // byte, a bad v1 line at its CRLF or its 107th byte. A failure is final: later calls return the
  // same Status. After success, later calls return the same header with consumed == 0.
  Result<Progress> feed(std::string_view data);

 private:
  enum class Phase { kStart, kV1Line, kV2Fixed, kV2Addresses, kV2Skip, kDone, kFailed };
  static constexpr size_t kMaxBuffered = 107;  // the longest v1 line, CRLF included

  Status fail(Status status);
  Status startMismatch(std::string_view rest) const;
  Status onV1Byte(char c);
  Status onV2FixedByte();
  Status parseV1Line();
  void finishV2Addresses();

  ProxyProtocolMode mode_;
  Phase phase_ = Phase::kStart;
  char buf_[kMaxBuffered];
  size_t len_ = 0;
  uint8_t v2AddressBytes_ = 0;  // of the address block, the part kept for 0x11 / 0x21
  size_t v2Remaining_ = 0;      // header bytes still to come in kV2Addresses / kV2Skip
  ProxyHeader header_;
  Status failure_;
};

}  // namespace whorl::net
