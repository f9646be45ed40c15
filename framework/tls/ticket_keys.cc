#include "framework/tls/ticket_keys.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "framework/tls/certificate.h"

namespace whorl::tls {

namespace {

// A key file is a few lines; anything much bigger is the wrong file.
constexpr size_t kMaxFileBytes = 1 << 20;

// One key. It wipes itself when destroyed, so every copy (a vector growing included) is
// cleansed before its memory goes back to the allocator.
struct TicketKey {
  unsigned char name[TicketKeys::kNameBytes];
  unsigned char hmac[TicketKeys::kHmacBytes];
  unsigned char aes[TicketKeys::kAesBytes];

  TicketKey() = default;
  TicketKey(const TicketKey&) = default;
  TicketKey& operator=(const TicketKey&) = default;
  ~TicketKey() { OPENSSL_cleanse(this, sizeof(*this)); }

  void assign(const unsigned char* bytes) {
    std::memcpy(name, bytes, sizeof(name));
    std::memcpy(hmac, bytes + sizeof(name), sizeof(hmac));
    std::memcpy(aes, bytes + sizeof(name) + sizeof(hmac), sizeof(aes));
  }
  bool sameAs(const TicketKey& other) const {
    return CRYPTO_memcmp(this, &other, sizeof(*this)) == 0;
  }
};
static_assert(sizeof(TicketKey) == TicketKeys::kKeyBytes);

// Wipes a buffer that held secret bytes when it goes out of scope.
class Wipe {
 public:
  explicit Wipe(std::string& s) : s_(s) {}
  ~Wipe() { OPENSSL_cleanse(s_.data(), s_.size()); }
  Wipe(const Wipe&) = delete;
  Wipe& operator=(const Wipe&) = delete;

 private:
  std::string& s_;
};

std::string hex(const unsigned char* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Text is printable ASCII and whitespace; one other byte makes the file binary. 80 random bytes
// pass for text with a probability around 1e-33.
bool looksBinary(std::string_view data) {
  for (unsigned char c : data) {
    bool text = (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t' || c == '\v' ||
                c == '\f';
    if (!text) return true;
  }
  return false;
}

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

Status formatError(const std::string& where, const std::string& what) {
  return Status::invalidArgument(where + ": session ticket key file: " + what);
}

Status readFile(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::fromErrno(errno, path + ": cannot open session ticket key file");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::fromErrno(e, path + ": cannot read session ticket key file");
  }
  bool regular = S_ISREG(st.st_mode);
  if (regular && static_cast<size_t>(st.st_size) > kMaxFileBytes) {
    ::close(fd);
    return formatError(path, std::to_string(st.st_size) + " bytes, too large for a key file");
  }
  // One allocation of the final size (plus one byte to notice growth), so no reallocation
  // leaves secret bytes behind in freed memory. Pipes and the like get the maximum.
  size_t cap = (regular ? static_cast<size_t>(st.st_size) : kMaxFileBytes) + 1;
  out->assign(cap, '\0');
  size_t got = 0;
  while (got < cap) {
    ssize_t n = ::read(fd, out->data() + got, cap - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Status::fromErrno(e, path + ": cannot read session ticket key file");
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got == cap) {
    return formatError(path, regular ? "the file changed while being read; try again"
                                     : "more than " + std::to_string(kMaxFileBytes) +
                                           " bytes, too large for a key file");
  }
  // Shrinking keeps the buffer (no reallocation); the caller wipes all of it.
  out->resize(got);
  return Status::ok();
}

Status parseText(std::string_view data, const std::string& path, std::vector<TicketKey>* keys) {
  constexpr size_t kHexChars = 2 * TicketKeys::kKeyBytes;
  std::vector<size_t> lineOf;  // the line each key came from, for duplicate errors
  size_t lineNo = 0;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string_view::npos) end = data.size();
    std::string_view line = trim(data.substr(pos, end - pos));
    pos = end + 1;
    ++lineNo;
    if (line.empty() || line.front() == '#') continue;
    std::string where = path + ":" + std::to_string(lineNo);
    // The column only, never the text: the rest of the line is probably a secret.
    for (size_t i = 0; i < line.size(); ++i) {
      if (hexValue(line[i]) < 0) {
        return formatError(where, "character " + std::to_string(i + 1) +
                                      " of the key is not a hex digit (a key is " +
                                      std::to_string(kHexChars) +
                                      " hex characters, as from `openssl rand -hex 80`)");
      }
    }
    if (line.size() != kHexChars) {
      return formatError(where, "the key is " + std::to_string(line.size()) +
                                    " hex characters, expected " + std::to_string(kHexChars) +
                                    " (80 bytes, as from `openssl rand -hex 80`)");
    }
    unsigned char bytes[TicketKeys::kKeyBytes];
    for (size_t i = 0; i < TicketKeys::kKeyBytes; ++i) {
      bytes[i] = static_cast<unsigned char>(hexValue(line[2 * i]) << 4 | hexValue(line[2 * i + 1]));
    }
    TicketKey key;
    key.assign(bytes);
    OPENSSL_cleanse(bytes, sizeof(bytes));
    for (size_t k = 0; k < keys->size(); ++k) {
      if (std::memcmp((*keys)[k].name, key.name, sizeof(key.name)) == 0) {
        return formatError(where, "duplicate key name " + hex(key.name, sizeof(key.name)) +
                                      " (also on line " + std::to_string(lineOf[k]) + ")");
      }
    }
    keys->push_back(key);
    lineOf.push_back(lineNo);
  }
  if (keys->empty()) {
    return formatError(path, "no key (the file is empty or holds only blank lines and comments; "
                             "add one made with `openssl rand -hex 80`)");
  }
  return Status::ok();
}

Result<std::vector<TicketKey>> readKeyFile(const std::string& path) {
  std::string data;
  Wipe wipe(data);
  WHORL_RETURN_IF_ERROR(readFile(path, &data));
  std::vector<TicketKey> keys;
  if (looksBinary(data)) {
    if (data.size() != TicketKeys::kKeyBytes) {
      return formatError(path, "binary data of " + std::to_string(data.size()) +
                                   " bytes: neither a text key file nor an 80-byte binary key");
    }
    keys.emplace_back();
    keys.back().assign(reinterpret_cast<const unsigned char*>(data.data()));
    return keys;
  }
  WHORL_RETURN_IF_ERROR(parseText(data, path, &keys));
  return keys;
}

// SSL_CTX ex_data: a heap shared_ptr<TicketKeys>, so the context keeps its keys alive; deleted
// by OpenSSL when the SSL_CTX is freed.
void freeInstalled(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::shared_ptr<TicketKeys>*>(ptr);
}

int installedIndex() {
  static int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, freeInstalled);
  return idx;
}

}  // namespace

struct TicketKeys::KeySet {
  // The file's keys (keys[0] encrypts), then the retained earlier encryption keys, newest first.
  std::vector<TicketKey> keys;
  size_t fileKeys = 0;

  // Linear: a set holds a handful of keys. Names are not secret, so memcmp is fine.
  const TicketKey* find(const unsigned char* name) const {
    for (const auto& k : keys) {
      if (std::memcmp(k.name, name, sizeof(k.name)) == 0) return &k;
    }
    return nullptr;
  }
};

TicketKeys::~TicketKeys() = default;

Result<std::shared_ptr<TicketKeys>> TicketKeys::loadFile(const std::string& path) {
  auto keys = readKeyFile(path);
  if (!keys) return keys.status();
  auto set = std::make_shared<KeySet>();
  set->keys = std::move(*keys);
  set->fileKeys = set->keys.size();
  std::shared_ptr<TicketKeys> tk(new TicketKeys());
  tk->set_ = std::move(set);
  return tk;
}

Status TicketKeys::reload(const std::string& path) {
  std::lock_guard<std::mutex> reloadLock(reloadMu_);
  auto keys = readKeyFile(path);
  if (!keys) return keys.status();
  std::shared_ptr<const KeySet> old = snapshot();
  auto next = std::make_shared<KeySet>();
  next->keys = std::move(*keys);
  next->fileKeys = next->keys.size();

  // Candidates, newest first: the old encryption key if this reload replaces it, then what the
  // old set retained. The new file wins a name clash (it may bring an old key back).
  std::vector<const TicketKey*> candidates;
  if (!old->keys[0].sameAs(next->keys[0])) candidates.push_back(&old->keys[0]);
  for (size_t i = old->fileKeys; i < old->keys.size(); ++i) candidates.push_back(&old->keys[i]);
  next->keys.reserve(next->fileKeys + kRetainedGenerations);
  size_t retained = 0;
  for (const TicketKey* k : candidates) {
    if (retained == kRetainedGenerations) break;
    if (next->find(k->name) != nullptr) continue;
    next->keys.push_back(*k);
    ++retained;
  }

  std::lock_guard<std::mutex> lock(mu_);
  set_ = std::move(next);
  return Status::ok();
}

std::shared_ptr<const TicketKeys::KeySet> TicketKeys::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return set_;
}

Status TicketKeys::install(SSL_CTX* ctx) {
  int idx = installedIndex();
  if (idx < 0) {
    return Status(Status::Code::kTls,
                  "session ticket keys: SSL_CTX_get_ex_new_index: " + takeOpenSSLErrors());
  }
  auto* ref = new std::shared_ptr<TicketKeys>(shared_from_this());
  // Replacing ex_data does not run the free function on the old value: release it here.
  auto* previous = static_cast<std::shared_ptr<TicketKeys>*>(SSL_CTX_get_ex_data(ctx, idx));
  if (SSL_CTX_set_ex_data(ctx, idx, ref) != 1) {
    delete ref;
    return Status(Status::Code::kTls, "session ticket keys: SSL_CTX_set_ex_data: " +
                                          takeOpenSSLErrors());
  }
  delete previous;
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketCallback);
  return Status::ok();
}

int TicketKeys::ticketCallback(SSL* ssl, unsigned char* keyName, unsigned char* iv,
                               EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
  // The keys of the connection's current SSL_CTX: with SNI that may be the name's context,
  // which is why context() installs the same keys in all of them.
  auto* ref = static_cast<std::shared_ptr<TicketKeys>*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), installedIndex()));
  if (ref == nullptr || *ref == nullptr) return encrypt ? -1 : 0;
  // Holding the snapshot keeps these keys alive through this call even if a reload swaps them.
  std::shared_ptr<const KeySet> set = (*ref)->snapshot();
  const EVP_CIPHER* aes = EVP_aes_256_cbc();
  const TicketKey* key = nullptr;
  int result = 1;
  if (encrypt) {
    key = &set->keys[0];
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) return -1;
    std::memcpy(keyName, key->name, kNameBytes);
  } else {
    key = set->find(keyName);
    if (key == nullptr) return 0;  // another fleet's key or one rotated out: full handshake
    // Decrypt-only key: ask OpenSSL for a fresh ticket under the current key, so the client
    // moves off the old key before it is dropped.
    if (key != &set->keys[0]) result = 2;
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac),
                                        kHmacBytes),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  int ok = encrypt ? EVP_EncryptInit_ex(cipher, aes, nullptr, key->aes, iv)
                   : EVP_DecryptInit_ex(cipher, aes, nullptr, key->aes, iv);
  return ok == 1 ? result : -1;
}

size_t TicketKeys::keyCount() const { return snapshot()->keys.size(); }

std::vector<std::string> TicketKeys::keyNamesHex() const {
  std::shared_ptr<const KeySet> set = snapshot();
  std::vector<std::string> names;
  names.reserve(set->keys.size());
  for (const auto& k : set->keys) names.push_back(hex(k.name, sizeof(k.name)));
  return names;
}

}  // namespace whorl::tls
