// The OpenSSL callbacks a TlsContext installs, private to framework/tls (not in the library's
// hdrs): context.cc builds the SSL_CTXs and installs these; each is defined next to the job it
// does.
//
//   SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verifyCallback);   // verify.cc
//   SSL_CTX_set_alpn_select_cb(ctx, alpnSelect, nullptr);       // negotiation.cc
//   installKeylog(ctx, options.ktls);                           // keylog.cc
//
// Ownership: the callbacks own nothing. They find their TlsContext through the SSL_CTX's ex_data
// (contextOf), which the TlsContext owns and outlives every SSL made from it.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <vector>

#include "framework/tls/options.h"

namespace whorl::tls {

// The TlsContext an SSL was made from (for SNI: the context it was switched to belongs to the
// same TlsContext), or null for an SSL_CTX that whorl did not build.
inline const TlsContext* contextOf(const SSL* ssl) {
  return static_cast<const TlsContext*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), TlsContext::contextIndex()));
}

// verify.cc: records the first failure in the SSL's VerifyFailure (TlsContext::verifyIndex()),
// which describeFailure() turns into words; never changes OpenSSL's verdict.
int verifyCallback(int ok, X509_STORE_CTX* sctx);

// negotiation.cc: ALPN and NPN (the server selects ALPN, the client selects NPN, from the
// context's acceptableProtocols()).
std::string wireProtocols(const std::vector<std::string>& protocols);  // length-prefixed
int alpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outLen, const unsigned char* in,
               unsigned inLen, void* arg);
int npnAdvertise(SSL* ssl, const unsigned char** out, unsigned* outLen, void* arg);  // arg: wire
int npnSelect(SSL* ssl, unsigned char** out, unsigned char* outLen, const unsigned char* in,
              unsigned inLen, void* arg);

// keylog.cc: lets kTLS see this context's TLS 1.3 secrets where the kernel can take them, and
// writes them to $SSLKEYLOGFILE when it is set.
void installKeylog(SSL_CTX* ctx, KtlsMode ktls);

}  // namespace whorl::tls
