// TLS wire constants (RFC 8446 §5, RFC 5246 §6.2) named once, for every layer that frames or
// inspects records: TLS (the session's record framing, the layer's records and close_notify, the
// kernel hand-over's control records and KeyUpdates) and the TCP transport (kernel-TLS cmsg
// record types).
//
//   if (type == tlswire::kAlert && data == tlswire::kCloseNotify) answerCloseNotify();
//   lower->setReadLimit(tlswire::kRecordHeaderSize);
//
// Constants only; owns nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace whorl::tlswire {

// Record content types (the first byte of a record header; the kernel's TLS_GET_RECORD_TYPE).
constexpr uint8_t kChangeCipherSpec = 20;
constexpr uint8_t kAlert = 21;
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kApplicationData = 23;

// type(1) + legacy_version(2) + length(2).
constexpr size_t kRecordHeaderSize = 5;
// The legacy_version of every TLS 1.3 record after the ClientHello: TLS 1.2's, {3, 3}.
constexpr uint8_t kLegacyVersionMajor = 3;
constexpr uint8_t kLegacyVersionMinor = 3;
// Largest plaintext a record carries (2^14).
constexpr size_t kMaxPlaintext = 16384;
// Largest expansion of a protected record over its plaintext (TLS 1.3: 2^14 + 256 on the wire).
constexpr size_t kMaxRecordExpansion = 256;
// Largest record on the wire, header included.
constexpr size_t kMaxRecordSize = kRecordHeaderSize + kMaxPlaintext + kMaxRecordExpansion;

// Alert bodies: level, description.
constexpr std::string_view kCloseNotify("\x01\x00", 2);            // warning, close_notify(0)
constexpr std::string_view kUnexpectedMessage("\x02\x0a", 2);      // fatal, unexpected_message(10)
constexpr uint8_t kCloseNotifyDescription = 0;

// Handshake message types seen after the handshake.
constexpr uint8_t kNewSessionTicket = 4;
constexpr uint8_t kKeyUpdate = 24;

// A KeyUpdate message (RFC 8446 §4.6.3): type key_update, length 1, then request_update.
constexpr std::string_view kKeyUpdateHeader("\x18\x00\x00\x01", 4);
constexpr uint8_t kUpdateNotRequested = 0;
constexpr uint8_t kUpdateRequested = 1;
// The whole message with update_not_requested: the answer to a peer's request.
constexpr std::string_view kKeyUpdateNotRequested("\x18\x00\x00\x01\x00", 5);

}  // namespace whorl::tlswire
