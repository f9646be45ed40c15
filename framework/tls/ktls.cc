#include "framework/tls/ktls.h"

#include <linux/tls.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

#include <cstring>

#include "framework/base/tls_wire.h"
#include "framework/tls/certificate.h"
#include "framework/tls/openssl_ptr.h"
#include "framework/tls/session.h"

namespace whorl::tls {

namespace {

std::string bigEndian64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return s;
}

template <typename Info>
std::string pack(const Info& info) {
  return std::string(reinterpret_cast<const char*>(&info), sizeof(info));
}

std::string cryptoInfo(uint16_t version, uint16_t cipher, const KernelTlsDirection& d) {
  std::string seq = bigEndian64(d.sequence);
  switch (cipher) {
    case TLS_CIPHER_AES_GCM_128: {
      tls12_crypto_info_aes_gcm_128 i{};
      i.info.version = version;
      i.info.cipher_type = cipher;
      std::memcpy(i.key, d.key.data(), sizeof(i.key));
      std::memcpy(i.salt, d.salt.data(), sizeof(i.salt));
      std::memcpy(i.iv, d.iv.data(), sizeof(i.iv));
      std::memcpy(i.rec_seq, seq.data(), sizeof(i.rec_seq));
      return pack(i);
    }
    case TLS_CIPHER_AES_GCM_256: {
      tls12_crypto_info_aes_gcm_256 i{};
      i.info.version = version;
      i.info.cipher_type = cipher;
      std::memcpy(i.key, d.key.data(), sizeof(i.key));
      std::memcpy(i.salt, d.salt.data(), sizeof(i.salt));
      std::memcpy(i.iv, d.iv.data(), sizeof(i.iv));
      std::memcpy(i.rec_seq, seq.data(), sizeof(i.rec_seq));
      return pack(i);
    }
    case TLS_CIPHER_CHACHA20_POLY1305: {
      tls12_crypto_info_chacha20_poly1305 i{};
      i.info.version = version;
      i.info.cipher_type = cipher;
      std::memcpy(i.key, d.key.data(), sizeof(i.key));
      std::memcpy(i.iv, d.iv.data(), sizeof(i.iv));
      std::memcpy(i.rec_seq, seq.data(), sizeof(i.rec_seq));
      return pack(i);
    }
  }
  return {};
}

Result<std::string> tls1Prf(const std::string& digest, const std::string& secret,
                            const std::string& seed, size_t length) {
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "TLS1-PRF", nullptr));
  if (!kdf) return Status(Status::Code::kTls, "TLS1-PRF unavailable: " + takeOpenSSLErrors());
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return Status(Status::Code::kTls, "TLS1-PRF: " + takeOpenSSLErrors());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest.c_str()), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, const_cast<char*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, const_cast<char*>(seed.data()), seed.size()),
      OSSL_PARAM_construct_end(),
  };
  std::string out(length, '\0');
  int ok = EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), length, params);
  if (ok != 1) return Status(Status::Code::kTls, "TLS1-PRF: " + takeOpenSSLErrors());
  return out;
}

struct Cipher {
  uint16_t type = 0;  // TLS_CIPHER_*
  size_t keyLen = 0;
  std::string digest;  // the handshake digest: "SHA256", "SHA384"
  std::string name;
};

Result<Cipher> offloadableCipher(SSL* ssl) {
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  if (cipher == nullptr) return Status(Status::Code::kTls, "kTLS: no cipher");
  Cipher c;
  c.name = SSL_CIPHER_get_name(cipher);
  const EVP_MD* md = SSL_CIPHER_get_handshake_digest(cipher);
  c.digest = md != nullptr ? EVP_MD_get0_name(md) : "SHA256";
  switch (SSL_CIPHER_get_cipher_nid(cipher)) {
    case NID_aes_128_gcm:
      c.type = TLS_CIPHER_AES_GCM_128;
      c.keyLen = 16;
      break;
    case NID_aes_256_gcm:
      c.type = TLS_CIPHER_AES_GCM_256;
      c.keyLen = 32;
      break;
    case NID_chacha20_poly1305:
      c.type = TLS_CIPHER_CHACHA20_POLY1305;
      c.keyLen = 32;
      break;
    default:
      return Status(Status::Code::kTls, "kTLS: cipher " + c.name + " cannot be offloaded");
  }
  return c;
}

// A TLS 1.3 traffic secret's key and IV (RFC 8446 §7.3), split as the kernel wants them.
Status tls13KeyAndIv(const Cipher& c, const std::string& secret, KernelTlsDirection* dir) {
  auto key = hkdfExpandLabel(c.digest, secret, "key", "", c.keyLen);
  auto iv = hkdfExpandLabel(c.digest, secret, "iv", "", 12);
  if (!key) return key.status();
  if (!iv) return iv.status();
  dir->key = *key;
  if (c.type == TLS_CIPHER_CHACHA20_POLY1305) {
    dir->iv = *iv;
  } else {
    dir->salt = iv->substr(0, 4);
    dir->iv = iv->substr(4, 8);
  }
  return Status::ok();
}

}  // namespace

Result<KernelTlsDirection> nextKernelTlsKey(TlsSession& session, bool clientSecret) {
  SSL* ssl = session.ssl();
  if (SSL_version(ssl) != TLS1_3_VERSION) {
    return Status(Status::Code::kTls, "kTLS: KeyUpdate exists only in TLS 1.3");
  }
  auto c = offloadableCipher(ssl);
  if (!c) return c.status();
  const std::string& secret = session.trafficSecret(clientSecret);
  if (secret.empty()) {
    return Status(Status::Code::kTls, "kTLS: the traffic secrets were not captured");
  }
  auto next = hkdfExpandLabel(c->digest, secret, "traffic upd", "", secret.size());
  if (!next) return next.status();
  KernelTlsDirection d;
  if (Status s = tls13KeyAndIv(*c, *next, &d); !s.isOk()) return s;
  session.setTrafficSecret(clientSecret, std::move(*next));
  d.sequence = 0;  // a new key starts its record count at 0
  d.cryptoInfo = cryptoInfo(TLS_1_3_VERSION, c->type, d);
  return d;
}

Result<std::string> sealTls13Record(const Tls13RecordKey& key, uint8_t contentType,
                                    std::string_view content) {
  constexpr size_t kNonceSize = 12;
  constexpr size_t kTagSize = 16;  // every offloadable AEAD's
  std::string inner(content);
  inner.push_back(static_cast<char>(contentType));
  size_t len = inner.size() + kTagSize;
  std::string record = {static_cast<char>(tlswire::kApplicationData),
                        static_cast<char>(tlswire::kLegacyVersionMajor),
                        static_cast<char>(tlswire::kLegacyVersionMinor),
                        static_cast<char>(len >> 8), static_cast<char>(len & 0xff)};
  // The sequence number, 64 bits big-endian, XORed into the iv's last 8 bytes.
  unsigned char nonce[kNonceSize];
  for (size_t i = 0; i < kNonceSize; ++i) {
    size_t shift = 8 * (kNonceSize - 1 - i);
    unsigned char seq = i < kNonceSize - 8 ? 0 : static_cast<unsigned char>(key.sequence >> shift);
    nonce[i] = static_cast<unsigned char>(key.iv[i]) ^ seq;
  }
  const EVP_CIPHER* cipher =
      key.cipherType == TLS_CIPHER_CHACHA20_POLY1305 ? EVP_chacha20_poly1305()
      : key.cipherType == TLS_CIPHER_AES_GCM_256     ? EVP_aes_256_gcm()
                                                     : EVP_aes_128_gcm();
  const auto* keyBytes = reinterpret_cast<const unsigned char*>(key.key.data());
  EvpCipherCtxPtr owned(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX* ctx = owned.get();
  int n = 0;
  std::string out(inner.size() + kTagSize, '\0');
  bool ok = ctx != nullptr && EVP_EncryptInit_ex(ctx, cipher, nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(kNonceSize),
                                nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx, nullptr, nullptr, keyBytes, nonce) == 1 &&
            EVP_EncryptUpdate(ctx, nullptr, &n,
                              reinterpret_cast<const unsigned char*>(record.data()),
                              static_cast<int>(tlswire::kRecordHeaderSize)) == 1 &&
            EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n,
                              reinterpret_cast<const unsigned char*>(inner.data()),
                              static_cast<int>(inner.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + n, &n) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize),
                                out.data() + inner.size()) == 1;
  if (!ok) return Status(Status::Code::kTls, "kTLS: could not seal a TLS 1.3 record");
  record += out;
  return record;
}

Result<std::string> hkdfExpandLabel(const std::string& digest, const std::string& secret,
                                    const std::string& label, const std::string& context,
                                    size_t length) {
  // struct { uint16 length; opaque label<7..255> = "tls13 " + label; opaque context<0..255>; }
  std::string info;
  info.push_back(static_cast<char>(length >> 8));
  info.push_back(static_cast<char>(length & 0xff));
  std::string full = "tls13 " + label;
  info.push_back(static_cast<char>(full.size()));
  info += full;
  info.push_back(static_cast<char>(context.size()));
  info += context;
  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return Status(Status::Code::kTls, "HKDF unavailable: " + takeOpenSSLErrors());
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return Status(Status::Code::kTls, "HKDF: " + takeOpenSSLErrors());
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest.c_str()), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end(),
  };
  std::string out(length, '\0');
  int ok = EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), length, params);
  if (ok != 1) return Status(Status::Code::kTls, "HKDF-Expand-Label: " + takeOpenSSLErrors());
  return out;
}

Result<KernelTlsParams> kernelTlsParams(const TlsSession& session) {
  SSL* ssl = session.ssl();
  if (!session.handshakeDone()) return Status(Status::Code::kTls, "kTLS: the handshake is not done");
  KernelTlsParams p;
  int version = SSL_version(ssl);
  auto c = offloadableCipher(ssl);
  if (!c) return c.status();
  p.cipherName = c->name;
  p.cipherType = c->type;
  const std::string& digest = c->digest;
  size_t keyLen = c->keyLen;
  bool chacha = p.cipherType == TLS_CIPHER_CHACHA20_POLY1305;
  bool isServer = SSL_is_server(ssl) == 1;
  KernelTlsDirection client, server;

  if (version == TLS1_3_VERSION) {
    p.version = TLS_1_3_VERSION;
    const std::string& cs = session.trafficSecret(/*client=*/true);
    const std::string& ss = session.trafficSecret(/*client=*/false);
    if (cs.empty() || ss.empty()) {
      return Status(Status::Code::kTls, "kTLS: the traffic secrets were not captured");
    }
    for (auto [secret, dir] : {std::pair{&cs, &client}, std::pair{&ss, &server}}) {
      if (Status s = tls13KeyAndIv(*c, *secret, dir); !s.isOk()) return s;
    }
  } else if (version == TLS1_2_VERSION) {
    p.version = TLS_1_2_VERSION;
    SSL_SESSION* sess = SSL_get_session(ssl);
    unsigned char master[SSL_MAX_MASTER_KEY_LENGTH];
    size_t masterLen = SSL_SESSION_get_master_key(sess, master, sizeof(master));
    unsigned char cr[SSL3_RANDOM_SIZE], sr[SSL3_RANDOM_SIZE];
    SSL_get_client_random(ssl, cr, sizeof(cr));
    SSL_get_server_random(ssl, sr, sizeof(sr));
    std::string seed = "key expansion";
    seed.append(reinterpret_cast<char*>(sr), sizeof(sr));
    seed.append(reinterpret_cast<char*>(cr), sizeof(cr));
    size_t ivLen = chacha ? 12 : 4;  // AEAD: no MAC keys; GCM's IV here is the implicit salt
    auto block = tls1Prf(digest, std::string(reinterpret_cast<char*>(master), masterLen), seed,
                         2 * keyLen + 2 * ivLen);
    OPENSSL_cleanse(master, sizeof(master));
    if (!block) return block.status();
    client.key = block->substr(0, keyLen);
    server.key = block->substr(keyLen, keyLen);
    std::string civ = block->substr(2 * keyLen, ivLen);
    std::string siv = block->substr(2 * keyLen + ivLen, ivLen);
    if (chacha) {
      client.iv = civ;
      server.iv = siv;
    } else {
      client.salt = civ;
      server.salt = siv;
    }
  } else {
    return Status(Status::Code::kTls, std::string("kTLS: ") + SSL_get_version(ssl) +
                                          " cannot be offloaded (TLS 1.2 and 1.3 only)");
  }
  KernelTlsDirection& tx = isServer ? server : client;
  KernelTlsDirection& rx = isServer ? client : server;
  tx.sequence = session.recordsSentUnderTrafficKeys();
  rx.sequence = session.recordsReceivedUnderTrafficKeys();
  if (version == TLS1_2_VERSION && !chacha) {
    // The explicit nonce only has to be unique per record: the sequence number, as OpenSSL does.
    tx.iv = bigEndian64(tx.sequence);
    rx.iv = bigEndian64(rx.sequence);
  }
  tx.cryptoInfo = cryptoInfo(p.version, p.cipherType, tx);
  rx.cryptoInfo = cryptoInfo(p.version, p.cipherType, rx);
  p.tx = std::move(tx);
  p.rx = std::move(rx);
  return p;
}

}  // namespace whorl::tls
