// Shared, rotatable TLS session ticket keys. Every server instance that loads the same key file
// can resume the sessions of the others, for TLS 1.3 PSK tickets and TLS 1.2 tickets alike.
// Without them each SSL_CTX makes its own random keys, so a ticket resumes only on the process
// (and the context) that issued it.
//
//   // Once, at startup (the same file on every instance of the fleet):
//   auto keys = TicketKeys::loadFile("/etc/whorl/ticket.keys");
//   if (!keys) return keys.status();          // "/etc/whorl/ticket.keys:3: ..."
//   CertificateOptions opts = cert.options();
//   opts.sessionTicketKeys = *keys;           // context() installs them in every SSL_CTX
//
//   // On rotation (e.g. from a SIGHUP handled on a normal thread): the new first key encrypts,
//   // the previous encryption keys still decrypt, a broken file changes nothing.
//   if (Status s = (*keys)->reload("/etc/whorl/ticket.keys"); !s.isOk()) log(s);
//
// File format. A text file, one key per line, each 160 hex characters (either case) = 80 bytes:
// a 16-byte key name, a 32-byte HMAC-SHA256 secret, a 32-byte AES-256-CBC key. Make one with
//
//   openssl rand -hex 80
//
// Blank lines and lines starting with '#' are ignored (leading and trailing spaces, tabs and a
// CR are ignored too). The FIRST key encrypts new tickets; further keys are accepted for
// decrypting tickets only, so a fleet can be given a new key as a second line everywhere before
// it becomes the first line anywhere. Key names must be unique within a file. Also accepted: a
// raw binary file of exactly 80 bytes in the same layout (nginx's ssl_session_ticket_key), as
// the one key. A file is taken as binary when it holds a byte that is neither printable ASCII
// nor whitespace; an 80-byte file of text is parsed as text (and so rejected, never silently
// used as a key). Errors name the file, the line and what is wrong; they never contain secret
// bytes (key names are not secret and may appear in errors and logs).
//
// Rotation. reload() replaces the file's keys and keeps the encryption keys of the last
// kRetainedGenerations generations for decryption, since those are what this instance's
// outstanding tickets were encrypted with: after rotating K1 -> K2 -> K3 tickets from K1 and K2
// still resume, after one more rotation (K4) K1 is gone and its tickets get a full handshake.
// A generation starts only when the first key changes; reloading an unchanged file keeps the
// retained keys as they are. Decrypt-only lines that a new file drops are dropped. A ticket
// decrypted with any key but the current encryption key is renewed (a new ticket under the
// current key); a ticket with an unknown key name gets a full handshake, not an error. Ticket
// lifetime is still OpenSSL's session timeout; the retention is only a bound on old keys.
//
// Ownership and threads. A TicketKeys is shared (shared_ptr) by every SSL_CTX it is installed in,
// across all shards: install() makes the SSL_CTX hold a reference, released by SSL_CTX_free, so
// the keys outlive every context that uses them. The OpenSSL callback runs on whichever thread
// accepts the connection; it takes an immutable snapshot of the key set under a mutex held only
// for a shared_ptr copy. reload() may run on any thread, concurrently with handshakes; reloads
// are serialized among themselves. Secret bytes are wiped (OPENSSL_cleanse) when a key set is
// freed and from every buffer the file passed through.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "framework/base/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace whorl::tls {

class TicketKeys : public std::enable_shared_from_this<TicketKeys> {
 public:
  static constexpr size_t kNameBytes = 16;
  static constexpr size_t kHmacBytes = 32;
  static constexpr size_t kAesBytes = 32;
  static constexpr size_t kKeyBytes = kNameBytes + kHmacBytes + kAesBytes;  // 80
  // How many earlier encryption keys reload() keeps for decryption.
  static constexpr size_t kRetainedGenerations = 2;

  // Reads and checks a key file (format above).
  static Result<std::shared_ptr<TicketKeys>> loadFile(const std::string& path);

  ~TicketKeys();
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  // Swaps in the keys of `path` (the same or another file), retaining earlier encryption keys as
  // described above. On any error nothing changes and the error says why.
  Status reload(const std::string& path);

  // Makes `ctx` (a server SSL_CTX) encrypt and decrypt its tickets with these keys, and hold a
  // reference to them until it is freed. The callback uses the keys of the connection's current
  // SSL_CTX, so install them in every context SNI can switch to (CertificateOptions::context()
  // does). Installing again (these or other keys) replaces the previous installation. Fails
  // only when OpenSSL cannot allocate.
  Status install(SSL_CTX* ctx);

  // All usable keys: the file's, then the retained ones.
  size_t keyCount() const;
  // Their names in hex (not secret), in the same order; the first is the encryption key.
  std::vector<std::string> keyNamesHex() const;

 private:
  struct KeySet;  // an immutable set of keys; the first one encrypts (ticket_keys.cc)

  TicketKeys() = default;
  std::shared_ptr<const KeySet> snapshot() const;
  // SSL_CTX_set_tlsext_ticket_key_evp_cb's callback.
  static int ticketCallback(SSL* ssl, unsigned char* keyName, unsigned char* iv,
                            EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt);

  mutable std::mutex mu_;  // guards set_ (the pointer, not the immutable set)
  std::shared_ptr<const KeySet> set_;
  std::mutex reloadMu_;  // serializes reload()
};

}  // namespace whorl::tls
