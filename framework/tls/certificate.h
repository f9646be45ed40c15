// Certificates, keys and trust roots (Twisted's ssl.Certificate, KeyPair, PrivateCertificate,
// trustRootFromCertificates, platformTrust, DiffieHellmanParameters).
//
//   auto cert = PrivateCertificate::loadPEMFile("certs/server.pem");   // key + certificate
//   if (!cert) return cert.status();          // e.g. "private key does not match certificate"
//   auto authority = Certificate::loadPEMFile("certs/public.pem");
//   std::printf("%s\n", authority->toString().c_str());   // <Certificate Subject=example.com ...>
//   CertificateOptions server = cert->options();           // serve with this identity
//   CertificateOptions clientAuth = cert->options({*authority});  // and require client certs
//   TLSOptions client = optionsForClientTLS("example.com", *authority);  // trust it as the root
//
// All types are cheap, copyable values that share the underlying OpenSSL object (reference
// counted), and are safe to copy between threads.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/base/status.h"

typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_store_st X509_STORE;

namespace whorl::tls {

struct CertificateOptions;

class Certificate {
 public:
  Certificate() = default;
  // Wraps (and shares) an OpenSSL certificate, e.g. transport()->getPeerCertificate().
  explicit Certificate(std::shared_ptr<X509> x509) : x509_(std::move(x509)) {}
  // The first certificate in PEM text / a PEM file.
  static Result<Certificate> loadPEM(std::string_view pem);
  static Result<Certificate> loadPEMFile(const std::string& path);
  // Every certificate in PEM text (a chain or bundle), in order.
  static Result<std::vector<Certificate>> loadAllPEM(std::string_view pem);
  static Result<Certificate> loadDER(std::string_view der);

  bool valid() const { return x509_ != nullptr; }
  explicit operator bool() const { return valid(); }
  X509* raw() const { return x509_.get(); }
  const std::shared_ptr<X509>& shared() const { return x509_; }

  // "CN=example.com" style one-line names; commonName() is just the CN value.
  std::string subject() const;
  std::string issuer() const;
  std::string commonName() const;
  // Subject alternative names as "DNS:example.com", "IP Address:127.0.0.1".
  std::vector<std::string> subjectAltNames() const;
  std::chrono::system_clock::time_point notBefore() const;
  std::chrono::system_clock::time_point notAfter() const;
  std::string serialNumber() const;  // hex
  std::string sha256Digest() const;  // "AB:CD:..."
  std::string dumpPEM() const;
  std::string dumpDER() const;
  // Twisted's repr: <Certificate Subject=example.com Issuer=example.com>
  std::string toString() const;
  bool operator==(const Certificate& other) const;

 private:
  std::shared_ptr<X509> x509_;
};

class KeyPair {
 public:
  KeyPair() = default;
  explicit KeyPair(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  static Result<KeyPair> loadPEM(std::string_view pem);
  static Result<KeyPair> loadPEMFile(const std::string& path);
  bool valid() const { return key_ != nullptr; }
  EVP_PKEY* raw() const { return key_.get(); }
  std::string typeName() const;  // "EC P-256", "RSA 2048"

 private:
  std::shared_ptr<EVP_PKEY> key_;
};

// A certificate with its private key (Twisted's PrivateCertificate).
class PrivateCertificate {
 public:
  PrivateCertificate() = default;
  // Fails if the key does not belong to the certificate.
  static Result<PrivateCertificate> fromCertificateAndKeyPair(Certificate cert, KeyPair key);
  // Key and certificate in one PEM (like the seed's server.pem); further certificates in the
  // text become the extra chain.
  static Result<PrivateCertificate> loadPEM(std::string_view pem);
  static Result<PrivateCertificate> loadPEMFile(const std::string& path);

  const Certificate& certificate() const { return cert_; }
  const KeyPair& privateKey() const { return key_; }
  const std::vector<Certificate>& chain() const { return chain_; }
  bool valid() const { return cert_.valid() && key_.valid(); }
  std::string toString() const { return cert_.toString(); }

  // Server options presenting this certificate. With authorities, the peer must present a
  // certificate anchored in one of them (client authentication), like Twisted's options().
  CertificateOptions options(std::vector<Certificate> authorities = {}) const;

 private:
  Certificate cert_;
  KeyPair key_;
  std::vector<Certificate> chain_;
};

// The set of authorities a peer's certificate must chain to. A Certificate or a vector of them
// converts (trustRootFromCertificates), so they can be passed wherever a TrustRoot goes:
//   optionsForClientTLS("example.com", authority);      // authority: a Certificate
//   options.trustRoot = authorities;                    // a std::vector<Certificate>
class TrustRoot {
 public:
  enum class Kind { kPlatform, kCertificates };
  TrustRoot() = default;
  // Trust exactly this certificate / these certificates as authorities.
  TrustRoot(Certificate authority);                 // NOLINT: implicit, as in Twisted
  TrustRoot(std::vector<Certificate> authorities);  // NOLINT: implicit

  Kind kind() const { return kind_; }
  const std::vector<Certificate>& certificates() const { return certs_; }
  // Adds the roots to `store` (the platform store, or the given certificates).
  Status addTo(X509_STORE* store) const;
  std::string describe() const;

 private:
  friend Result<TrustRoot> platformTrust();
  Kind kind_ = Kind::kPlatform;
  std::vector<Certificate> certs_;
  std::string platformFile_;
  std::string platformDir_;
};

// Trust exactly these certificates as authorities (self-signed certificates trust themselves).
TrustRoot trustRootFromCertificates(std::vector<Certificate> certificates);
// The system store, honouring SSL_CERT_FILE and SSL_CERT_DIR. Fails when there is none, naming
// the ca-certificates package.
Result<TrustRoot> platformTrust();
// Loads a trust root from a PEM bundle file or a directory of PEM files.
Result<TrustRoot> trustRootFromPath(const std::string& path);

class DiffieHellmanParameters {
 public:
  static Result<DiffieHellmanParameters> fromFile(const std::string& path);
  EVP_PKEY* raw() const { return params_.get(); }

 private:
  std::shared_ptr<EVP_PKEY> params_;
};

// The last OpenSSL error(s) on this thread as text, clearing the queue.
std::string takeOpenSSLErrors();

}  // namespace whorl::tls
