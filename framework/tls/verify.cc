// Certificate verification failures: what the verify callback records during a handshake, and
// the sentence TlsContext::describeFailure makes of it. OpenSSL's own text ("certificate verify
// failed") names neither the certificate nor the names it holds; these do.
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "framework/tls/context_hooks.h"

namespace whorl::tls {

namespace {

std::string formatTime(std::chrono::system_clock::time_point t) {
  time_t tt = std::chrono::system_clock::to_time_t(t);
  tm utc;
  gmtime_r(&tt, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &utc);
  return buf;
}

}  // namespace

int verifyCallback(int ok, X509_STORE_CTX* sctx) {
  if (ok) return ok;
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* slot = ssl ? static_cast<std::unique_ptr<VerifyFailure>*>(
                         SSL_get_ex_data(ssl, TlsContext::verifyIndex()))
                   : nullptr;
  if (slot != nullptr && !*slot) *slot = std::make_unique<VerifyFailure>();
  VerifyFailure* vf = slot != nullptr ? slot->get() : nullptr;
  if (vf != nullptr && vf->error == 0) {
    vf->error = X509_STORE_CTX_get_error(sctx);
    vf->depth = X509_STORE_CTX_get_error_depth(sctx);
    X509* failing = X509_STORE_CTX_get_current_cert(sctx);
    if (failing != nullptr) {
      X509_up_ref(failing);
      Certificate c(std::shared_ptr<X509>(failing, X509_free));
      vf->certificate = c.toString();
      vf->notAfter = formatTime(c.notAfter());
      vf->notBefore = formatTime(c.notBefore());
    }
    X509* leaf = X509_STORE_CTX_get0_cert(sctx);
    if (leaf != nullptr) {
      X509_up_ref(leaf);
      Certificate c(std::shared_ptr<X509>(leaf, X509_free));
      vf->leafNames = c.subjectAltNames();
      if (vf->leafNames.empty()) vf->leafNames.push_back("CN=" + c.commonName());
    }
  }
  return ok;
}

int TlsContext::verifyIndex() {
  static int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

std::string TlsContext::describeFailure(const VerifyFailure& vf, const std::string& errors) const {
  if (vf.error != 0) {
    std::string got;
    for (const auto& n : vf.leafNames) got += (got.empty() ? "" : ", ") + n;
    switch (vf.error) {
      case X509_V_ERR_HOSTNAME_MISMATCH:
        return "certificate verify failed: hostname mismatch: wanted " + hostname_ + ", got " + got;
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "certificate verify failed: IP address mismatch: wanted " + hostname_ + ", got " + got;
      case X509_V_ERR_CERT_HAS_EXPIRED:
        return "certificate verify failed: certificate has expired: " + vf.certificate +
               " expired " + vf.notAfter;
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return "certificate verify failed: certificate is not yet valid: " + vf.certificate +
               " is valid from " + vf.notBefore;
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return std::string("certificate verify failed: unknown authority (") +
               X509_verify_cert_error_string(vf.error) + "): " + vf.certificate +
               " is not anchored in the trusted roots";
      default:
        return std::string("certificate verify failed: ") + X509_verify_cert_error_string(vf.error) +
               ": " + vf.certificate;
    }
  }
  return errors.empty() ? "TLS handshake failed" : errors;
}

}  // namespace whorl::tls
