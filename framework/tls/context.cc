// Building TlsContexts: the SSL_CTX settings both roles share, a server context (plus one per SNI
// certificate), a client context, and the SSL per connection. The callbacks installed here live
// with their jobs (context_hooks.h).
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <strings.h>

#include <algorithm>
#include <mutex>

#include "framework/base/address.h"
#include "framework/tls/context_hooks.h"
#include "framework/tls/ticket_keys.h"

namespace whorl::tls {

namespace {

int versionCode(TLSVersion v) {
  switch (v) {
    case TLSVersion::SSLv3: return SSL3_VERSION;
    case TLSVersion::TLSv1_0: return TLS1_VERSION;
    case TLSVersion::TLSv1_1: return TLS1_1_VERSION;
    case TLSVersion::TLSv1_2: return TLS1_2_VERSION;
    case TLSVersion::TLSv1_3: return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

Result<std::pair<TLSVersion, TLSVersion>> computeRange(std::optional<TLSVersion> raise,
                                                       std::optional<TLSVersion> lower,
                                                       std::optional<TLSVersion> maximum) {
  if (raise && lower) {
    return Status::invalidArgument(
        "raiseMinimumTo and insecurelyLowerMinimumTo cannot be used together");
  }
  TLSVersion min = kDefaultMinimumTLSVersion;
  if (raise) min = std::max(*raise, kDefaultMinimumTLSVersion);
  if (lower) min = *lower;
  TLSVersion max = maximum.value_or(TLSVersion::TLSv1_3);
  if (min > max) {
    return Status::invalidArgument(std::string("the minimum TLS version ") + toString(min) +
                                   " is above the maximum " + toString(max));
  }
#ifdef OPENSSL_NO_SSL3
  if (min == TLSVersion::SSLv3) {
    return Status::invalidArgument(
        "SSLv3 was requested but this OpenSSL is built without it (no-ssl3)");
  }
#endif
  return std::make_pair(min, max);
}

int newSessionCallback(SSL* ssl, SSL_SESSION* session) {
  const TlsContext* ctx = contextOf(ssl);
  if (ctx == nullptr) return 0;
  ctx->storeSession(session);
  return 1;  // we keep the reference
}

int serverNameCallback(SSL* ssl, int*, void*) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;
  const TlsContext* ctx = contextOf(ssl);
  if (ctx == nullptr) return SSL_TLSEXT_ERR_OK;
  for (const auto& [host, sctx] : ctx->sniContexts()) {
    if (strcasecmp(host.c_str(), name) == 0) {
      SSL_set_SSL_CTX(ssl, sctx);
      break;
    }
  }
  return SSL_TLSEXT_ERR_OK;
}

// Settings shared by the client, the main and the per-SNI server contexts. README.md ("TLS
// defaults") says why each default is what it is.
Status configureCommon(SSL_CTX* ctx, TlsContext::Role role,
                       const std::pair<TLSVersion, TLSVersion>& range,
                       const std::optional<AcceptableCiphers>& ciphers, KtlsMode ktls) {
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  if (SSL_CTX_set1_groups_list(ctx, kDefaultGroups) != 1) {
    return Status(Status::Code::kTls, std::string("this OpenSSL lacks the key-exchange groups ") +
                                          kDefaultGroups + ": " + takeOpenSSLErrors());
  }
  if (range.first < TLSVersion::TLSv1_2) {
    // OpenSSL 3 refuses TLS 1.0/1.1 handshakes (SHA-1 signatures) above security level 0; the
    // caller asked for them explicitly with insecurelyLowerMinimumTo.
    SSL_CTX_set_security_level(ctx, 0);
  }
  if (SSL_CTX_set_min_proto_version(ctx, versionCode(range.first)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, versionCode(range.second)) != 1) {
    return Status(Status::Code::kTls, std::string("this OpenSSL cannot use TLS versions ") +
                                          toString(range.first) + " to " + toString(range.second) +
                                          ": " + takeOpenSSLErrors());
  }
  if (ciphers && ciphers->tls12().empty()) {
    // No TLS 1.2 cipher selected: OpenSSL cannot hold an empty list, so TLS 1.2 is turned off.
    if (range.second < TLSVersion::TLSv1_3) {
      return Status::invalidArgument(
          "acceptableCiphers selects no TLS 1.2 cipher but TLS 1.3 is not allowed");
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  } else {
    std::string tls12;
    if (ciphers) {
      tls12 = ciphers->tls12();
    } else {
      tls12 = role == TlsContext::Role::kServer ? kDefaultServerTls12Ciphers
                                                : kDefaultClientTls12Ciphers;
      if (range.first < TLSVersion::TLSv1_2) tls12 += std::string(":") + kLegacyTls10Ciphers;
    }
    if (SSL_CTX_set_cipher_list(ctx, tls12.c_str()) != 1) {
      return Status(Status::Code::kTls, "acceptableCiphers '" + tls12 + "': " + takeOpenSSLErrors());
    }
  }
  const char* tls13 = ciphers ? ciphers->tls13().c_str() : kDefaultTls13Ciphersuites;
  if (SSL_CTX_set_ciphersuites(ctx, tls13) != 1) {
    return Status(Status::Code::kTls, std::string("acceptableCiphers (TLS 1.3) '") + tls13 +
                                          "': " + takeOpenSSLErrors());
  }
  installKeylog(ctx, ktls);
  return Status::ok();
}

Status useIdentity(SSL_CTX* ctx, const Certificate& cert, const KeyPair& key,
                   const std::vector<Certificate>& chain) {
  if (!cert.valid() || !key.valid()) {
    return Status::invalidArgument("an empty PrivateCertificate: a certificate and its key are needed");
  }
  // Checked first: SSL_CTX_use_PrivateKey would fail on a mismatch with only OpenSSL's
  // "key values mismatch".
  if (X509_check_private_key(cert.raw(), key.raw()) != 1) {
    ERR_clear_error();
    return Status(Status::Code::kTls, "private key does not match certificate " + cert.toString());
  }
  if (SSL_CTX_use_certificate(ctx, cert.raw()) != 1) {
    return Status(Status::Code::kTls, "cannot use certificate " + cert.toString() + ": " + takeOpenSSLErrors());
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.raw()) != 1) {
    return Status(Status::Code::kTls, "cannot use private key: " + takeOpenSSLErrors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return Status(Status::Code::kTls, "private key does not match certificate " + cert.toString());
  }
  for (const auto& c : chain) {
    if (SSL_CTX_add1_chain_cert(ctx, c.raw()) != 1) {
      return Status(Status::Code::kTls, "cannot add chain certificate " + c.toString() + ": " + takeOpenSSLErrors());
    }
  }
  return Status::ok();
}

// Session tickets as the options ask: none, shared keys (a fleet), or OpenSSL's own per-context
// keys.
Status configureTickets(SSL_CTX* ctx, const CertificateOptions& o) {
  if (!o.enableSessionTickets) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    // In TLS 1.3 SSL_OP_NO_TICKET alone only switches to stateful tickets (still sent, still
    // resumable); sending none is what turns TLS 1.3 resumption off.
    SSL_CTX_set_num_tickets(ctx, 0);
  } else if (o.sessionTicketKeys) {
    if (Status s = o.sessionTicketKeys->install(ctx); !s.isOk()) {
      return s.withContext("sessionTicketKeys");
    }
  }
  return Status::ok();
}

// Client authentication: the peer must present a certificate anchored in `roots`.
Status requireClientCertificates(SSL_CTX* ctx, const TrustRoot& roots, int verifyDepth) {
  WHORL_RETURN_IF_ERROR(roots.addTo(SSL_CTX_get_cert_store(ctx)));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verifyCallback);
  SSL_CTX_set_verify_depth(ctx, verifyDepth);
  // Tell clients which authorities we accept.
  STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
  for (const auto& c : roots.certificates()) {
    sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(c.raw())));
  }
  SSL_CTX_set_client_CA_list(ctx, names);
  return Status::ok();
}

// One server SSL_CTX presenting `cert`: the main one, or one per SNI certificate. `owner` is the
// TlsContext the callbacks find through contextOf().
Result<SslCtxPtr> newServerCtx(const CertificateOptions& o, TlsContext* owner,
                               const std::pair<TLSVersion, TLSVersion>& range,
                               const Certificate& cert, const KeyPair& key,
                               const std::vector<Certificate>& chain) {
  ERR_clear_error();
  SslCtxPtr owned(SSL_CTX_new(TLS_server_method()));
  if (!owned) return Status(Status::Code::kTls, "SSL_CTX_new: " + takeOpenSSLErrors());
  SSL_CTX* ctx = owned.get();
  SSL_CTX_set_ex_data(ctx, TlsContext::contextIndex(), owner);
  WHORL_RETURN_IF_ERROR(
      configureCommon(ctx, TlsContext::Role::kServer, range, o.acceptableCiphers, o.ktls));
  WHORL_RETURN_IF_ERROR(useIdentity(ctx, cert, key, chain));
  WHORL_RETURN_IF_ERROR(configureTickets(ctx, o));
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  static const unsigned char kSessionContext[] = "whorl";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  if (o.dhParameters) {
    EVP_PKEY_up_ref(o.dhParameters->raw());
    EvpPkeyPtr dh(o.dhParameters->raw());
    if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh.get()) != 1) {
      return Status(Status::Code::kTls, "dhParameters: " + takeOpenSSLErrors());
    }
    (void)dh.release();  // set0: the context owns it now
  }
  if (o.trustRoot) WHORL_RETURN_IF_ERROR(requireClientCertificates(ctx, *o.trustRoot, o.verifyDepth));
  if (!o.acceptableProtocols.empty()) SSL_CTX_set_alpn_select_cb(ctx, alpnSelect, nullptr);
  return owned;
}

}  // namespace

Result<std::pair<TLSVersion, TLSVersion>> CertificateOptions::versionRange() const {
  return computeRange(raiseMinimumTo, insecurelyLowerMinimumTo, lowerMaximumSecurityTo);
}

Result<std::shared_ptr<TlsContext>> CertificateOptions::context() const {
  auto range = versionRange();
  if (!range) return range.status();
  if (!certificate.valid() || !privateKey.valid()) {
    return Status::invalidArgument("a TLS server needs a certificate and its private key");
  }
  std::shared_ptr<TlsContext> tc(new TlsContext());
  tc->role_ = TlsContext::Role::kServer;
  tc->handshakeTimeout_ = handshakeTimeout;
  tc->protocols_ = acceptableProtocols;
  tc->ktls_ = ktls;
  auto main = newServerCtx(*this, tc.get(), *range, certificate, privateKey, extraCertChain);
  if (!main) return main.status();
  tc->ctx_ = std::move(*main);
  for (const auto& pc : sniCertificates) {
    auto sctx = newServerCtx(*this, tc.get(), *range, pc.certificate(), pc.privateKey(), pc.chain());
    if (!sctx) return sctx.status().withContext("sniCertificates");
    SSL_CTX* c = sctx->get();
    tc->sniOwned_.push_back(std::move(*sctx));
    bool named = false;
    for (const auto& san : pc.certificate().subjectAltNames()) {
      if (san.rfind("DNS:", 0) == 0) {
        tc->sni_.emplace_back(san.substr(4), c);
        named = true;
      }
    }
    if (!named) tc->sni_.emplace_back(pc.certificate().commonName(), c);
  }
  if (!tc->sni_.empty()) SSL_CTX_set_tlsext_servername_callback(tc->raw(), serverNameCallback);
#ifndef OPENSSL_NO_NEXTPROTONEG
  if (!acceptableProtocols.empty()) {
    // The context owns the advertisement: the callbacks get a pointer into it.
    tc->npnWire_ = std::make_unique<std::string>(wireProtocols(acceptableProtocols));
    SSL_CTX_set_next_protos_advertised_cb(tc->raw(), npnAdvertise, tc->npnWire_.get());
    for (auto& [name, c] : tc->sni_) {
      SSL_CTX_set_next_protos_advertised_cb(c, npnAdvertise, tc->npnWire_.get());
    }
  }
#endif
  return tc;
}

Result<std::shared_ptr<TlsContext>> TlsContext::client(
    std::string hostname, std::optional<TrustRoot> trustRoot,
    std::optional<PrivateCertificate> clientCertificate,
    std::vector<std::string> acceptableProtocols, ClientTLSExtras extras) {
  if (hostname.empty()) return Status::invalidArgument("optionsForClientTLS needs a hostname");
  auto range = computeRange(extras.raiseMinimumTo, extras.insecurelyLowerMinimumTo,
                            extras.lowerMaximumSecurityTo);
  if (!range) return range.status();
  if (!trustRoot) {
    auto platform = platformTrust();
    if (!platform) return platform.status();
    trustRoot = *platform;
  }
  ERR_clear_error();
  std::shared_ptr<TlsContext> tc(new TlsContext());
  tc->role_ = TlsContext::Role::kClient;
  tc->hostname_ = hostname;
  tc->hostnameIsIp_ = isIpLiteral(hostname);
  tc->handshakeTimeout_ = extras.handshakeTimeout;
  tc->protocols_ = acceptableProtocols;
  tc->resumeSessions_ = extras.resumeSessions;
  tc->ktls_ = extras.ktls;
  tc->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (!tc->ctx_) return Status(Status::Code::kTls, "SSL_CTX_new: " + takeOpenSSLErrors());
  SSL_CTX* ctx = tc->raw();
  SSL_CTX_set_ex_data(ctx, TlsContext::contextIndex(), tc.get());
  WHORL_RETURN_IF_ERROR(configureCommon(ctx, TlsContext::Role::kClient, *range,
                                        extras.acceptableCiphers, extras.ktls));
  WHORL_RETURN_IF_ERROR(trustRoot->addTo(SSL_CTX_get_cert_store(ctx)));
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verifyCallback);
  if (clientCertificate) {
    WHORL_RETURN_IF_ERROR(useIdentity(ctx, clientCertificate->certificate(),
                                      clientCertificate->privateKey(), clientCertificate->chain()));
  }
  if (!acceptableProtocols.empty()) {
    std::string wire = wireProtocols(acceptableProtocols);
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size())) != 0) {
      return Status(Status::Code::kTls, "ALPN protocols: " + takeOpenSSLErrors());
    }
#ifndef OPENSSL_NO_NEXTPROTONEG
    SSL_CTX_set_next_proto_select_cb(ctx, npnSelect, nullptr);
#endif
  }
  if (extras.resumeSessions) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, newSessionCallback);
  }
  return tc;
}

Result<SslPtr> TlsContext::newSSL(std::unique_ptr<VerifyFailure>* verify) const {
  ERR_clear_error();
  SslPtr owned(SSL_new(ctx_.get()));
  if (!owned) return Status(Status::Code::kTls, "SSL_new: " + takeOpenSSLErrors());
  SSL* ssl = owned.get();
  SSL_set_ex_data(ssl, verifyIndex(), verify);
  if (role_ == Role::kServer) {
    SSL_set_accept_state(ssl);
    return owned;
  }
  SSL_set_connect_state(ssl);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (hostnameIsIp_) {
    std::string ip = hostname_;
    if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    X509_VERIFY_PARAM_set1_ip_asc(param, ip.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, hostname_.c_str());
    unsigned flags = X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
    // RFC 6125 6.4.3: a wildcard never matches an IDNA A-label. OpenSSL lets a whole-label "*"
    // match "xn--..."; since a wildcard can only stand for the left-most label, a host whose
    // left-most label is an A-label must match without wildcards.
    if (strncasecmp(hostname_.c_str(), "xn--", 4) == 0) flags |= X509_CHECK_FLAG_NO_WILDCARDS;
    X509_VERIFY_PARAM_set_hostflags(param, flags);
    X509_VERIFY_PARAM_set1_host(param, hostname_.c_str(), 0);
  }
  if (resumeSessions_) {
    std::lock_guard<std::mutex> lock(sessionMu_);
    if (cachedSession_ && SSL_SESSION_is_resumable(cachedSession_.get())) {
      // A copy: OpenSSL marks a connection's session not resumable when that connection ends
      // without close_notify, which must not spoil the cached one for later connections.
      SslSessionPtr copy(SSL_SESSION_dup(cachedSession_.get()));
      if (copy) SSL_set_session(ssl, copy.get());  // takes its own reference
    }
  }
  return owned;
}

int TlsContext::contextIndex() {
  static int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

void TlsContext::storeSession(SSL_SESSION* session) const {
  // Keep a copy: the original stays the connection's own session, and OpenSSL marks that one not
  // resumable when the connection ends without a close_notify it saw (always so under kTLS).
  SslSessionPtr handed(session);  // the callback handed us this reference
  SslSessionPtr copy(SSL_SESSION_dup(session));
  if (!copy) return;
  std::lock_guard<std::mutex> lock(sessionMu_);
  cachedSession_ = std::move(copy);
}

}  // namespace whorl::tls
