// openssl_ptr.h: owning holders for OpenSSL objects, so that no return path frees one by hand.
//
//   SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
//   if (!ctx) return Status(...);
//   if (!configure(ctx.get())) return Status(...);   // freed here
//   return ctx;                                        // or handed on, still owned
//
// Each holder is a std::unique_ptr whose deleter calls the object's own OpenSSL free function.
// For OpenSSL's reference-counted objects (SSL_SESSION, X509, EVP_PKEY) a holder owns one
// reference: hold what a *_dup, *_new or get1 function returned, never what a get0 returned.
// Objects shared between owners (Certificate's X509, KeyPair's EVP_PKEY) stay std::shared_ptr with
// the same free function as their deleter.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace whorl::tls {

template <auto Free>
struct OpenSslFree {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

template <typename T, auto Free>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree<Free>>;

using SslCtxPtr = OpenSslPtr<SSL_CTX, SSL_CTX_free>;
using SslPtr = OpenSslPtr<SSL, SSL_free>;
using SslSessionPtr = OpenSslPtr<SSL_SESSION, SSL_SESSION_free>;
using X509Ptr = OpenSslPtr<X509, X509_free>;
using EvpPkeyPtr = OpenSslPtr<EVP_PKEY, EVP_PKEY_free>;
using BioPtr = OpenSslPtr<BIO, BIO_free>;
using BignumPtr = OpenSslPtr<BIGNUM, BN_free>;
using GeneralNamesPtr = OpenSslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using EvpCipherCtxPtr = OpenSslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using EvpKdfPtr = OpenSslPtr<EVP_KDF, EVP_KDF_free>;
using EvpKdfCtxPtr = OpenSslPtr<EVP_KDF_CTX, EVP_KDF_CTX_free>;

// OPENSSL_free is a macro (it passes the caller's file and line), so it needs its own deleter.
struct OpenSslBytesFree {
  void operator()(void* p) const { OPENSSL_free(p); }
};
using OpenSslString = std::unique_ptr<char, OpenSslBytesFree>;
using OpenSslBytes = std::unique_ptr<unsigned char, OpenSslBytesFree>;

}  // namespace whorl::tls
