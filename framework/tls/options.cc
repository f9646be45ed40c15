#include "framework/tls/options.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cctype>

namespace whorl::tls {

const char* toString(KtlsMode m) {
  switch (m) {
    case KtlsMode::kAuto: return "auto";
    case KtlsMode::kOff: return "off";
    case KtlsMode::kRequire: return "require";
  }
  return "?";
}

Result<KtlsMode> parseKtlsMode(std::string_view text) {
  if (text == "auto") return KtlsMode::kAuto;
  if (text == "off") return KtlsMode::kOff;
  if (text == "require") return KtlsMode::kRequire;
  return Status::invalidArgument("ktls must be auto, off or require, not '" + std::string(text) + "'");
}

const char* toString(TLSVersion v) {
  switch (v) {
    case TLSVersion::SSLv3: return "SSLv3";
    case TLSVersion::TLSv1_0: return "TLSv1_0";
    case TLSVersion::TLSv1_1: return "TLSv1_1";
    case TLSVersion::TLSv1_2: return "TLSv1_2";
    case TLSVersion::TLSv1_3: return "TLSv1_3";
  }
  return "?";
}

Result<TLSVersion> parseTLSVersion(std::string_view text) {
  std::string t(text);
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "sslv3" || t == "ssl3") return TLSVersion::SSLv3;
  if (t == "tlsv1_0" || t == "tlsv1.0" || t == "tlsv1" || t == "1.0") return TLSVersion::TLSv1_0;
  if (t == "tlsv1_1" || t == "tlsv1.1" || t == "1.1") return TLSVersion::TLSv1_1;
  if (t == "tlsv1_2" || t == "tlsv1.2" || t == "1.2") return TLSVersion::TLSv1_2;
  if (t == "tlsv1_3" || t == "tlsv1.3" || t == "1.3") return TLSVersion::TLSv1_3;
  return Status::invalidArgument("unknown TLS version '" + std::string(text) +
                                 "' (known: SSLv3, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3)");
}

Result<AcceptableCiphers> AcceptableCiphers::fromOpenSSLCipherString(std::string tls12,
                                                                      std::string tls13) {
  SslCtxPtr probe(SSL_CTX_new(TLS_method()));
  if (!probe) return Status(Status::Code::kTls, "SSL_CTX_new: " + takeOpenSSLErrors());
  bool ok12 = tls12.empty() || SSL_CTX_set_cipher_list(probe.get(), tls12.c_str()) == 1;
  ERR_clear_error();
  bool ok13 = tls13.empty() || SSL_CTX_set_ciphersuites(probe.get(), tls13.c_str()) == 1;
  ERR_clear_error();
  if ((tls12.empty() || !ok12) && (tls13.empty() || !ok13)) {
    return Status::invalidArgument("the cipher selection '" + tls12 + "' / '" + tls13 +
                                   "' matches no cipher this OpenSSL supports");
  }
  if (!ok12) return Status::invalidArgument("the cipher string '" + tls12 + "' matches no cipher");
  if (!ok13) return Status::invalidArgument("the TLS 1.3 ciphersuites '" + tls13 + "' match no cipher");
  AcceptableCiphers c;
  // An empty list disables that family ("" is not "default"): see configureCommon.
  c.tls12_ = tls12;
  c.tls13_ = tls13;
  return c;
}

namespace {
// What failed TLSOptions give startTLS: their error, through api::TlsUpgrade::status(), which
// transports check before anything else.
class FailedTlsUpgrade final : public api::TlsUpgrade {
 public:
  explicit FailedTlsUpgrade(Status error) : error_(std::move(error)) {}
  Status status() const override { return error_; }
  bool actsAsClient() const override { return false; }
  std::unique_ptr<api::Protocol> wrapForStartTLS(std::unique_ptr<api::Protocol>,
                                                 std::function<void(Status)>) const override {
    return nullptr;  // never called: status() is checked first
  }

 private:
  Status error_;
};
}  // namespace

TLSOptions::TLSOptions(const CertificateOptions& options) : TLSOptions(options.context()) {}

TLSOptions::TLSOptions(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {}

TLSOptions::TLSOptions(Result<std::shared_ptr<TlsContext>> context) {
  if (context) {
    context_ = std::move(context.value());
  } else {
    error_ = context.status();
  }
}

TLSOptions::TLSOptions(Status error) : error_(std::move(error)) {}

const Status& TLSOptions::status() const {
  static const Status kOk;
  static const Status kNone = Status::invalidArgument("no TLS options");
  if (context_ != nullptr) return kOk;
  return error_.isOk() ? kNone : error_;
}

TLSOptions::operator std::shared_ptr<const api::TlsUpgrade>() const {
  if (context_ != nullptr) return context_;
  return std::make_shared<FailedTlsUpgrade>(status());
}

TLSOptions optionsForClientTLS(std::string hostname, std::optional<TrustRoot> trustRoot,
                               std::optional<PrivateCertificate> clientCertificate,
                               std::vector<std::string> acceptableProtocols,
                               ClientTLSExtras extras) {
  return TlsContext::client(std::move(hostname), std::move(trustRoot),
                            std::move(clientCertificate), std::move(acceptableProtocols),
                            std::move(extras));
}

}  // namespace whorl::tls
