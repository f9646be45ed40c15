#include "framework/tls/certificate.h"

#include <dirent.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "framework/base/files.h"
#include "framework/tls/openssl_ptr.h"
#include "framework/tls/options.h"

namespace whorl::tls {

namespace {

std::shared_ptr<X509> wrap(X509* x) { return std::shared_ptr<X509>(x, X509_free); }
std::shared_ptr<EVP_PKEY> wrap(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

BioPtr memBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string bioContents(BIO* b) {
  char* data = nullptr;
  long len = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string nameToString(X509_NAME* name) {
  if (name == nullptr) return "";
  BioPtr b(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(b.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return bioContents(b.get());
}

std::chrono::system_clock::time_point asn1Time(const ASN1_TIME* t) {
  tm out{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &out) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&out));
}

}  // namespace

std::string takeOpenSSLErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    // Keep the human part: "error:0A000086:SSL routines::certificate verify failed" -> last field.
    std::string s(buf);
    auto pos = s.rfind(':');
    std::string reason = pos == std::string::npos ? s : s.substr(pos + 1);
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out;
}

Result<Certificate> Certificate::loadPEM(std::string_view pem) {
  ERR_clear_error();
  auto bio = memBio(pem);
  X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (x == nullptr) {
    return Status(Status::Code::kTls, "no PEM certificate found: " + takeOpenSSLErrors());
  }
  return Certificate(wrap(x));
}

Result<Certificate> Certificate::loadPEMFile(const std::string& path) {
  auto text = readFile(path);
  if (!text) return text.status();
  auto c = loadPEM(*text);
  if (!c) return c.status().withContext(path);
  return c;
}

Result<std::vector<Certificate>> Certificate::loadAllPEM(std::string_view pem) {
  ERR_clear_error();
  auto bio = memBio(pem);
  std::vector<Certificate> out;
  for (;;) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (x == nullptr) break;
    out.emplace_back(wrap(x));
  }
  ERR_clear_error();  // the read that ends the loop always "fails"
  if (out.empty()) return Status(Status::Code::kTls, "no PEM certificate found");
  return out;
}

Result<Certificate> Certificate::loadDER(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (x == nullptr) return Status(Status::Code::kTls, "bad DER certificate: " + takeOpenSSLErrors());
  return Certificate(wrap(x));
}

std::string Certificate::subject() const {
  return valid() ? nameToString(X509_get_subject_name(raw())) : "";
}

std::string Certificate::issuer() const {
  return valid() ? nameToString(X509_get_issuer_name(raw())) : "";
}

std::string Certificate::commonName() const {
  if (!valid()) return "";
  char buf[256] = {0};
  int n = X509_NAME_get_text_by_NID(X509_get_subject_name(raw()), NID_commonName, buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::vector<std::string> Certificate::subjectAltNames() const {
  std::vector<std::string> out;
  if (!valid()) return out;
  GeneralNamesPtr owned(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(raw(), NID_subject_alt_name, nullptr, nullptr)));
  GENERAL_NAMES* names = owned.get();
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS) {
      const unsigned char* s = ASN1_STRING_get0_data(gn->d.dNSName);
      out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(s),
                                         static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName))));
    } else if (gn->type == GEN_IPADD) {
      const unsigned char* s = ASN1_STRING_get0_data(gn->d.iPAddress);
      int len = ASN1_STRING_length(gn->d.iPAddress);
      char buf[64] = {0};
      if (len == 4) {
        std::snprintf(buf, sizeof(buf), "%d.%d.%d.%d", s[0], s[1], s[2], s[3]);
      } else if (len == 16) {
        char* p = buf;
        for (int k = 0; k < 16; k += 2) {
          p += std::snprintf(p, 6, "%s%x", k ? ":" : "", (s[k] << 8) | s[k + 1]);
        }
      }
      out.push_back(std::string("IP Address:") + buf);
    } else if (gn->type == GEN_EMAIL) {
      const unsigned char* s = ASN1_STRING_get0_data(gn->d.rfc822Name);
      out.push_back("email:" + std::string(reinterpret_cast<const char*>(s),
                                           static_cast<size_t>(ASN1_STRING_length(gn->d.rfc822Name))));
    }
  }
  return out;
}

std::chrono::system_clock::time_point Certificate::notBefore() const {
  return valid() ? asn1Time(X509_get0_notBefore(raw())) : std::chrono::system_clock::time_point{};
}

std::chrono::system_clock::time_point Certificate::notAfter() const {
  return valid() ? asn1Time(X509_get0_notAfter(raw())) : std::chrono::system_clock::time_point{};
}

std::string Certificate::serialNumber() const {
  if (!valid()) return "";
  BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(raw()), nullptr));
  OpenSslString hex(bn ? BN_bn2hex(bn.get()) : nullptr);
  return hex ? std::string(hex.get()) : "";
}

std::string Certificate::sha256Digest() const {
  if (!valid()) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  X509_digest(raw(), EVP_sha256(), md, &n);
  std::string s;
  char buf[4];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), i ? ":%02X" : "%02X", md[i]);
    s += buf;
  }
  return s;
}

std::string Certificate::dumpPEM() const {
  if (!valid()) return "";
  BioPtr b(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(b.get(), raw());
  return bioContents(b.get());
}

std::string Certificate::dumpDER() const {
  if (!valid()) return "";
  unsigned char* out = nullptr;
  int len = i2d_X509(raw(), &out);
  OpenSslBytes owned(out);
  if (len <= 0) return "";
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(len));
}

std::string Certificate::toString() const {
  if (!valid()) return "<Certificate (none)>";
  std::string cn = commonName();
  std::string iss;
  {
    char buf[256] = {0};
    int n = X509_NAME_get_text_by_NID(X509_get_issuer_name(raw()), NID_commonName, buf, sizeof(buf));
    iss = n > 0 ? std::string(buf, static_cast<size_t>(n)) : issuer();
  }
  return "<Certificate Subject=" + (cn.empty() ? subject() : cn) + " Issuer=" + iss + ">";
}

bool Certificate::operator==(const Certificate& other) const {
  if (!valid() || !other.valid()) return valid() == other.valid();
  return X509_cmp(raw(), other.raw()) == 0;
}

Result<KeyPair> KeyPair::loadPEM(std::string_view pem) {
  ERR_clear_error();
  auto bio = memBio(pem);
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (k == nullptr) return Status(Status::Code::kTls, "no PEM private key found: " + takeOpenSSLErrors());
  return KeyPair(wrap(k));
}

Result<KeyPair> KeyPair::loadPEMFile(const std::string& path) {
  auto text = readFile(path);
  if (!text) return text.status();
  auto k = loadPEM(*text);
  if (!k) return k.status().withContext(path);
  return k;
}

std::string KeyPair::typeName() const {
  if (!valid()) return "none";
  int id = EVP_PKEY_get_base_id(raw());
  if (id == EVP_PKEY_EC) {
    char group[64] = {0};
    size_t len = 0;
    EVP_PKEY_get_utf8_string_param(raw(), "group", group, sizeof(group), &len);
    std::string g(group);
    if (g == "prime256v1") g = "P-256";
    if (g == "secp384r1") g = "P-384";
    return "EC " + g;
  }
  if (id == EVP_PKEY_RSA) return "RSA " + std::to_string(EVP_PKEY_get_bits(raw()));
  return EVP_PKEY_get0_type_name(raw()) ? EVP_PKEY_get0_type_name(raw()) : "unknown";
}

Result<PrivateCertificate> PrivateCertificate::fromCertificateAndKeyPair(Certificate cert,
                                                                          KeyPair key) {
  if (!cert.valid()) return Status::invalidArgument("no certificate");
  if (!key.valid()) return Status::invalidArgument("no private key");
  if (X509_check_private_key(cert.raw(), key.raw()) != 1) {
    ERR_clear_error();
    return Status(Status::Code::kTls, "private key does not match certificate " + cert.toString());
  }
  PrivateCertificate pc;
  pc.cert_ = std::move(cert);
  pc.key_ = std::move(key);
  return pc;
}

Result<PrivateCertificate> PrivateCertificate::loadPEM(std::string_view pem) {
  auto key = KeyPair::loadPEM(pem);
  if (!key) return key.status();
  auto certs = Certificate::loadAllPEM(pem);
  if (!certs) return certs.status();
  auto pc = fromCertificateAndKeyPair(certs->front(), *key);
  if (!pc) return pc.status();
  pc->chain_.assign(certs->begin() + 1, certs->end());
  return pc;
}

Result<PrivateCertificate> PrivateCertificate::loadPEMFile(const std::string& path) {
  auto text = readFile(path);
  if (!text) return text.status();
  auto pc = loadPEM(*text);
  if (!pc) return pc.status().withContext(path);
  return pc;
}

CertificateOptions PrivateCertificate::options(std::vector<Certificate> authorities) const {
  CertificateOptions o;
  o.privateKey = key_;
  o.certificate = cert_;
  o.extraCertChain = chain_;
  if (!authorities.empty()) o.trustRoot = trustRootFromCertificates(std::move(authorities));
  return o;
}

TrustRoot::TrustRoot(Certificate authority)
    : kind_(Kind::kCertificates), certs_{std::move(authority)} {}

TrustRoot::TrustRoot(std::vector<Certificate> authorities)
    : kind_(Kind::kCertificates), certs_(std::move(authorities)) {}

TrustRoot trustRootFromCertificates(std::vector<Certificate> certificates) {
  return TrustRoot(std::move(certificates));
}

Result<TrustRoot> platformTrust() {
  const char* fileEnv = std::getenv(X509_get_default_cert_file_env());
  const char* dirEnv = std::getenv(X509_get_default_cert_dir_env());
  std::string file = fileEnv ? fileEnv : X509_get_default_cert_file();
  std::string dir = dirEnv ? dirEnv : X509_get_default_cert_dir();
  struct stat st;
  bool haveFile = stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
  bool haveDir = false;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') {
        haveDir = true;
        break;
      }
    }
    closedir(d);
  }
  if (!haveFile && !haveDir) {
    return Status(Status::Code::kTls,
                  "no system trust store: neither " + file + " nor " + dir +
                      " holds certificates (install the ca-certificates package, or set "
                      "SSL_CERT_FILE / SSL_CERT_DIR)");
  }
  TrustRoot t;
  t.kind_ = TrustRoot::Kind::kPlatform;
  t.platformFile_ = haveFile ? file : "";
  t.platformDir_ = haveDir ? dir : "";
  return t;
}

Result<TrustRoot> trustRootFromPath(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Status::fromErrno(errno, "trust root " + path);
  std::vector<Certificate> all;
  auto addFile = [&all](const std::string& p) -> Status {
    auto text = readFile(p);
    if (!text) return text.status();
    auto certs = Certificate::loadAllPEM(*text);
    if (!certs) return certs.status().withContext(p);
    all.insert(all.end(), certs->begin(), certs->end());
    return Status::ok();
  };
  if (S_ISDIR(st.st_mode)) {
    DIR* d = opendir(path.c_str());
    if (d == nullptr) return Status::fromErrno(errno, "trust root " + path);
    std::vector<std::string> files;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 4 && (n.ends_with(".pem") || n.ends_with(".crt"))) files.push_back(path + "/" + n);
    }
    closedir(d);
    for (const auto& f : files) {
      // Key-only files in the directory are skipped; any certificate counts.
      (void)addFile(f);
    }
    if (all.empty()) return Status(Status::Code::kTls, "no certificates in directory " + path);
  } else {
    WHORL_RETURN_IF_ERROR(addFile(path));
  }
  return trustRootFromCertificates(std::move(all));
}

namespace {

// OpenSSL fills a certificate's extension cache (key identifiers, purposes, flags) on first use,
// under the certificate's own lock; verification on other threads reads it without that lock. The
// roots of one context are shared by every shard, so two shards verifying their first peers at
// once race on it (ThreadSanitizer: X509_check_akid reading a root's SKID while another thread
// sets it). Filling the cache here, before the context is shared, leaves only reads.
void cacheExtensions(X509_STORE* store) {
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
  for (int i = 0; i < sk_X509_OBJECT_num(objects); ++i) {
    if (X509* x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i))) {
      X509_check_purpose(x, -1, 0);
    }
  }
}

}  // namespace

Status TrustRoot::addTo(X509_STORE* store) const {
  if (kind_ == Kind::kPlatform) {
    if (X509_STORE_load_locations(store, platformFile_.empty() ? nullptr : platformFile_.c_str(),
                                  platformDir_.empty() ? nullptr : platformDir_.c_str()) != 1) {
      return Status(Status::Code::kTls, "cannot load the system trust store: " + takeOpenSSLErrors());
    }
    // (A directory's certificates are loaded later, on lookup, under the store's lock.)
    cacheExtensions(store);
    return Status::ok();
  }
  for (const auto& c : certs_) {
    if (X509_STORE_add_cert(store, c.raw()) != 1) {
      unsigned long e = ERR_peek_last_error();
      if (ERR_GET_REASON(e) == X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        ERR_clear_error();
        continue;
      }
      return Status(Status::Code::kTls, "cannot add trust root " + c.toString() + ": " + takeOpenSSLErrors());
    }
  }
  cacheExtensions(store);
  return Status::ok();
}

std::string TrustRoot::describe() const {
  if (kind_ == Kind::kPlatform) {
    return "the system trust store (" + (platformFile_.empty() ? platformDir_ : platformFile_) + ")";
  }
  std::string s;
  for (const auto& c : certs_) s += (s.empty() ? "" : ", ") + c.toString();
  return s;
}

Result<DiffieHellmanParameters> DiffieHellmanParameters::fromFile(const std::string& path) {
  auto text = readFile(path);
  if (!text) return text.status();
  ERR_clear_error();
  auto bio = memBio(*text);
  EVP_PKEY* p = PEM_read_bio_Parameters(bio.get(), nullptr);
  if (p == nullptr) {
    return Status(Status::Code::kTls, path + ": no DH parameters: " + takeOpenSSLErrors());
  }
  DiffieHellmanParameters d;
  d.params_ = wrap(p);
  return d;
}

}  // namespace whorl::tls
