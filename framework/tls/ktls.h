// Kernel TLS key material: what setsockopt(SOL_TLS, TLS_TX / TLS_RX) needs after a handshake.
//
//   auto params = kernelTlsParams(session);        // after session.handshakeDone()
//   if (!params) log(params.status());              // e.g. "cipher X cannot be offloaded"
//   setsockopt(fd, SOL_TLS, TLS_TX, params->tx.data(), params->tx.size());
//
// Debian's OpenSSL 3.0 offloads only through its socket BIO (and only TX for TLS 1.3), so whorl
// derives the keys itself through public APIs: TLS 1.3 traffic secrets (captured from the key-log
// callback) expanded with HKDF-Expand-Label, TLS 1.2 key blocks from the master secret and the
// randoms with the TLS1-PRF. The record sequence numbers come from the session's own count of
// records sent and received under the current keys. sealTls13Record protects one record the way
// the peer would have, for messages the kernel decrypted that OpenSSL must still read (a TLS 1.3
// client's session tickets). Values only; nothing here touches a socket.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "framework/base/status.h"

namespace whorl::tls {

class TlsSession;

struct KernelTlsDirection {
  std::string key;
  std::string salt;  // AES-GCM: the implicit nonce part; ChaCha20: empty
  std::string iv;    // AES-GCM: 8 bytes; ChaCha20: 12 bytes
  uint64_t sequence = 0;
  // The struct tls12_crypto_info_* bytes for setsockopt.
  std::string cryptoInfo;
};

struct KernelTlsParams {
  uint16_t version = 0;    // 0x0303 or 0x0304
  uint16_t cipherType = 0;  // as in KernelTlsParams
  std::string cipherName;
  KernelTlsDirection tx;
  KernelTlsDirection rx;
};

// Fails (with the reason) when the version or cipher cannot be offloaded or the secrets are
// unknown (the context was built with ktls off).
Result<KernelTlsParams> kernelTlsParams(const TlsSession& session);

// TLS 1.3 KeyUpdate (RFC 8446 §7.2): moves `session`'s client (clientSecret) or server
// application traffic secret to the next generation, HKDF-Expand-Label(secret, "traffic upd", "",
// Hash.length), and returns the kernel parameters of that key (sequence 0) for a new TLS_TX or
// TLS_RX. Fails for TLS 1.2 or when the secrets are unknown.
Result<KernelTlsDirection> nextKernelTlsKey(TlsSession& session, bool clientSecret);

// One direction's TLS 1.3 record protection: what sealTls13Record needs.
struct Tls13RecordKey {
  uint16_t cipherType = 0;  // as in KernelTlsParams
  std::string key;
  std::string iv;         // 12 bytes (the kernel's salt + iv)
  uint64_t sequence = 0;  // of the record to seal; the caller counts
};

// `content` as one protected TLS 1.3 record (RFC 8446 §5.2): the inner plaintext is the content
// plus its type, the nonce is the iv XOR the sequence, the record header (outer type
// application_data, legacy version 3.3, length) is the additional data. Fails only when OpenSSL
// does.
Result<std::string> sealTls13Record(const Tls13RecordKey& key, uint8_t contentType,
                                    std::string_view content);

// HKDF-Expand-Label (RFC 8446 §7.1) with the given digest ("SHA256"/"SHA384").
Result<std::string> hkdfExpandLabel(const std::string& digest, const std::string& secret,
                                    const std::string& label, const std::string& context,
                                    size_t length);

}  // namespace whorl::tls
