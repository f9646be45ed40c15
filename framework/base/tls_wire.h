// TLS wire constants (RFC 8446 §5, RFC 5246 §6.2) named once, for every layer that frames or
// inspects records: the TLS layer (userspace records, kernel-TLS control records) and the TCP
// transport (kernel-TLS cmsg record types).
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

}  // namespace whorl::tlswire
