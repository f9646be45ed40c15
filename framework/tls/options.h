// TLS configuration (Twisted's CertificateOptions, optionsForClientTLS, TLSVersion,
// AcceptableCiphers, protocolNegotiationMechanisms), the TLSOptions that every TLS entry point
// takes, and the TlsContext built from them.
//
//   // Server: the seed's certificate.options(), plus choices.
//   auto cert = PrivateCertificate::loadPEMFile("certs/server.pem").value();
//   CertificateOptions opts = cert.options();
//   opts.raiseMinimumTo = TLSVersion::TLSv1_3;
//   opts.acceptableProtocols = {"h2", "http/1.1"};
//   endpoint::listenSSL(runtime, 8000, factory, opts);   // or cert.options() as it is
//
//   // The same options for startTLS: build once (TLSOptions), use on every connection.
//   TLSOptions options = cert.options();                  // the SSL_CTX is built here
//   ... transport()->startTLS(options);                   // in the protocol, per connection
//
//   // Client: verify "example.com" against a private authority (a Certificate, or a vector).
//   TLSOptions client = optionsForClientTLS("example.com", authority);
//   endpoint::SSL4ClientEndpoint(shard, "example.com", 443, client);
//
// Version rules follow the seed: the default floor is TLSv1_2; raiseMinimumTo never lowers it;
// insecurelyLowerMinimumTo sets it exactly; raiseMinimumTo together with insecurelyLowerMinimumTo
// is an error, as is a minimum above the maximum; lowerMaximumSecurityTo is inclusive (unlike
// Twisted, TLSv1_2 there still allows 1.2). CertificateOptions is a plain value (a recipe);
// building it gives a TlsContext, which owns one SSL_CTX (plus one per SNI name), is immutable
// once built, and is shared by every shard and connection that uses it (OpenSSL makes SSL_new on
// a shared SSL_CTX thread-safe); the client session cache inside it is guarded by a mutex. A
// TLSOptions shares one TlsContext (or holds the reason the build failed) and is cheap to copy.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "framework/api/protocol.h"
#include "framework/api/transport.h"
#include "framework/base/status.h"
#include "framework/tls/certificate.h"
#include "framework/tls/openssl_ptr.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

namespace whorl::tls {

enum class TLSVersion { SSLv3, TLSv1_0, TLSv1_1, TLSv1_2, TLSv1_3 };

// Kernel TLS after the handshake: auto (use it where the kernel and cipher allow, else stay in
// userspace), off, or require (fail the connection with the reason when it cannot be used).
enum class KtlsMode { kAuto, kOff, kRequire };
const char* toString(KtlsMode m);
Result<KtlsMode> parseKtlsMode(std::string_view text);
inline constexpr TLSVersion kDefaultMinimumTLSVersion = TLSVersion::TLSv1_2;
const char* toString(TLSVersion v);
// Accepts "TLSv1_2", "TLSv1.2", "1.2", "SSLv3".
Result<TLSVersion> parseTLSVersion(std::string_view text);

// TLS 1.3 suites when none are chosen, in server preference order. AES-128-GCM first (OpenSSL's
// own default starts with AES-256-GCM-SHA384): as strong in practice, cheaper per record, and
// its SHA-256 transcript hash is cheaper per handshake than SHA-384 (as Go and BoringSSL choose).
inline constexpr const char* kDefaultTls13Ciphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// TLS 1.2 suites a server offers when none are chosen, in its order of preference (the server
// chooses: SSL_OP_CIPHER_SERVER_PREFERENCE, with SSL_OP_PRIORITIZE_CHACHA for clients that put
// ChaCha20 first because they lack AES instructions). Mozilla's "intermediate" list (guideline
// 5.7): forward-secret AEAD only, no CBC (Lucky13, padding oracles), no static RSA (no forward
// secrecy, ROBOT); AES-128-GCM first for the reason given above. Every one of them can move
// into kernel TLS. The DHE-RSA suites need an RSA certificate and dhParameters (as in Twisted:
// whorl never makes up DH parameters); without both, OpenSSL never picks them.
inline constexpr const char* kDefaultServerTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
// TLS 1.2 suites a client offers when none are chosen: the server list without finite-field
// DHE, whose group the server picks (possibly a weak one; browsers dropped DHE for that reason).
inline constexpr const char* kDefaultClientTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// Added to either default above when insecurelyLowerMinimumTo allows TLS 1.0 or 1.1, which have
// no AEAD suites: the forward-secret CBC ones, last in the order, so TLS 1.2 clients still get
// AEAD (any client that offers it). Asking for TLS 1.0 is asking for these.
inline constexpr const char* kLegacyTls10Ciphers =
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA";
// Key-exchange groups, both roles, in preference order (Mozilla's list). Leaves out X448 and
// P-521 (slower, no practical gain) and the TLS 1.3 finite-field groups, with which a client
// could make the server spend a large modular exponentiation (ffdhe8192) on every handshake.
inline constexpr const char* kDefaultGroups = "X25519:P-256:P-384";

// The cipher selection (Twisted's IAcceptableCiphers). TLS 1.2 and below use an OpenSSL cipher
// string; TLS 1.3 its ciphersuite list.
class AcceptableCiphers {
 public:
  // Fails when the strings select no cipher at all.
  static Result<AcceptableCiphers> fromOpenSSLCipherString(
      std::string tls12, std::string tls13 = kDefaultTls13Ciphersuites);
  const std::string& tls12() const { return tls12_; }
  const std::string& tls13() const { return tls13_; }

 private:
  std::string tls12_;
  std::string tls13_;
};

// Which protocol negotiation extensions this OpenSSL offers (Twisted's ProtocolNegotiationSupport).
enum ProtocolNegotiationSupport : unsigned { kNoNegotiation = 0, kNPN = 1, kALPN = 2 };
unsigned protocolNegotiationMechanisms();

class TlsContext;
class TicketKeys;  // framework/tls/ticket_keys.h

struct CertificateOptions {
  KeyPair privateKey;
  Certificate certificate;
  std::vector<Certificate> extraCertChain;
  // Server: when set, clients must present a certificate anchored in it (client authentication).
  // Client (rarely used directly): the authorities for the server certificate.
  std::optional<TrustRoot> trustRoot;
  int verifyDepth = 9;
  std::optional<DiffieHellmanParameters> dhParameters;
  std::optional<AcceptableCiphers> acceptableCiphers;
  // ALPN and NPN, in preference order.
  std::vector<std::string> acceptableProtocols;
  bool enableSessionTickets = true;
  // Session ticket keys shared with the other instances of a fleet and rotatable at run time
  // (installed in the main and every SNI SSL_CTX when tickets are enabled). Null = OpenSSL's
  // per-context random keys: tickets resume only on the context that issued them.
  std::shared_ptr<TicketKeys> sessionTicketKeys;
  std::optional<TLSVersion> raiseMinimumTo;
  std::optional<TLSVersion> insecurelyLowerMinimumTo;
  std::optional<TLSVersion> lowerMaximumSecurityTo;
  // Server-side SNI: certificates chosen by the name the client asks for; `certificate` is the
  // default for other names and for clients that send none.
  std::vector<PrivateCertificate> sniCertificates;
  std::chrono::milliseconds handshakeTimeout{10000};
  KtlsMode ktls = KtlsMode::kAuto;

  // The negotiable range after applying the rules above, or the error.
  Result<std::pair<TLSVersion, TLSVersion>> versionRange() const;
  // A server context; errors name the bad option.
  Result<std::shared_ptr<TlsContext>> context() const;
};

// The TLS options that listenSSL, SSL4ServerEndpoint, SSL4ClientEndpoint, connectSSL and
// Transport::startTLS take (Twisted's IOpenSSLContextFactory): one built TlsContext, shared by
// every copy, or the reason building it failed. Whoever uses failed options reports that reason:
// listen() returns it, startTLS() returns it as its Status, connect() fails with it. So
// `TLSOptions options = cert.options();` needs no check of its own, though isOk()/status() let a
// program stop at start-up instead.
//
// Made from CertificateOptions implicitly (as Twisted passes certificate.options() where a
// context factory goes), and returned by optionsForClientTLS. The conversion builds the SSL_CTX
// (reads keys, checks them): keep the TLSOptions and pass it on, rather than converting the same
// CertificateOptions for every connection; that is why startTLS does not take CertificateOptions.
// Copies are cheap and thread-safe (a shared_ptr and an ok Status). One type for servers and
// clients (no separate ClientTLSOptions): the context inside knows its role, and endpoints and
// startTLS check it.
class [[nodiscard]] TLSOptions {
 public:
  // No options: using them fails with "no TLS options".
  TLSOptions() = default;
  // Builds the server context now (CertificateOptions::context()); keeps the error if it fails.
  TLSOptions(const CertificateOptions& options);  // NOLINT: implicit, like Twisted's options()
  // A context built already (null counts as "no TLS options").
  TLSOptions(std::shared_ptr<TlsContext> context);  // NOLINT: implicit
  // A context or the reason there is none: TLSOptions(options.context()).
  TLSOptions(Result<std::shared_ptr<TlsContext>> context);  // NOLINT: implicit
  // Failed options, with why (e.g. the certificate they needed did not load).
  TLSOptions(Status error);  // NOLINT: implicit, as Result<T> is from a Status

  bool isOk() const { return context_ != nullptr; }
  explicit operator bool() const { return isOk(); }
  // Ok, or why these options cannot be used.
  const Status& status() const;
  // The built context (TlsFactory, TlsLayer, TlsSession take it); null unless isOk().
  const std::shared_ptr<TlsContext>& context() const { return context_; }

  // What Transport::startTLS takes: the context, or (failed options) an upgrade whose status()
  // is the build's error, so that startTLS returns it.
  operator std::shared_ptr<const api::TlsUpgrade>() const;  // NOLINT: implicit by design

 private:
  std::shared_ptr<TlsContext> context_;
  Status error_;  // set when context_ is null because a build failed
};

// Client options beyond the seed's four parameters.
struct ClientTLSExtras {
  std::optional<TLSVersion> raiseMinimumTo;
  std::optional<TLSVersion> insecurelyLowerMinimumTo;
  std::optional<TLSVersion> lowerMaximumSecurityTo;
  std::optional<AcceptableCiphers> acceptableCiphers;
  std::chrono::milliseconds handshakeTimeout{10000};
  bool resumeSessions = true;
  KtlsMode ktls = KtlsMode::kAuto;
};

// The seed's optionsForClientTLS: client options bound to the name the server must prove. SNI
// for names (not for IP literals), chain verification against `trustRoot` (default:
// platformTrust(); a Certificate or a std::vector<Certificate> converts, as in Twisted's
// optionsForClientTLS(u"example.com", authority)), and RFC 6125 name checks: DNS-ID against DNS
// SANs (a wildcard only as the whole left-most label, never matching an xn-- label), IP literals
// against IP SANs, the CN only when the certificate has no SAN. Bad arguments make failed
// options (see TLSOptions), with the reason in status().
TLSOptions optionsForClientTLS(std::string hostname,
                               std::optional<TrustRoot> trustRoot = std::nullopt,
                               std::optional<PrivateCertificate> clientCertificate = std::nullopt,
                               std::vector<std::string> acceptableProtocols = {},
                               ClientTLSExtras extras = {});

// Why certificate verification failed, recorded during the handshake (see TlsContext).
struct VerifyFailure {
  int error = 0;  // X509_V_ERR_*, 0 if verification did not fail
  int depth = 0;
  std::string certificate;      // toString() of the failing certificate
  std::string notAfter;         // for expiry errors
  std::string notBefore;
  std::vector<std::string> leafNames;  // SANs (or CN) of the peer's leaf certificate
};

class TlsContext final : public api::TlsUpgrade,
                         public std::enable_shared_from_this<TlsContext> {
 public:
  enum class Role { kClient, kServer };
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  Role role() const { return role_; }
  // Client: the name the server certificate must match (and the SNI, unless an IP literal).
  const std::string& hostname() const { return hostname_; }
  std::chrono::milliseconds handshakeTimeout() const { return handshakeTimeout_; }
  const std::vector<std::string>& acceptableProtocols() const { return protocols_; }
  KtlsMode ktls() const { return ktls_; }
  SSL_CTX* raw() const { return ctx_.get(); }

  // api::TlsUpgrade: transport()->startTLS(options) puts a TLS layer in this role under a live
  // protocol (defined in tls_layer.cc).
  bool actsAsClient() const override { return role_ == Role::kClient; }
  std::unique_ptr<api::Protocol> wrapForStartTLS(
      std::unique_ptr<api::Protocol> app, std::function<void(Status)> onHandshake) const override;

  // A new SSL object for one connection in this context's role (client: SNI, name checks and a
  // cached session to resume). `verify` receives a VerifyFailure (allocated then) if the peer's
  // certificate fails; it must outlive the SSL object.
  Result<SslPtr> newSSL(std::unique_ptr<VerifyFailure>* verify) const;
  // The reason a handshake failed, in words a person can act on: the verification failure if
  // there was one, else OpenSSL's errors.
  std::string describeFailure(const VerifyFailure& verify, const std::string& openSSLErrors) const;

  // Internal: OpenSSL callbacks reach the context through these.
  static int verifyIndex();
  static int contextIndex();
  void storeSession(SSL_SESSION* session) const;
  const std::vector<std::pair<std::string, SSL_CTX*>>& sniContexts() const { return sni_; }

 private:
  friend struct CertificateOptions;
  // optionsForClientTLS builds through this.
  static Result<std::shared_ptr<TlsContext>> client(std::string hostname,
                                                    std::optional<TrustRoot> trustRoot,
                                                    std::optional<PrivateCertificate> certificate,
                                                    std::vector<std::string> protocols,
                                                    ClientTLSExtras extras);
  friend TLSOptions optionsForClientTLS(std::string, std::optional<TrustRoot>,
                                        std::optional<PrivateCertificate>,
                                        std::vector<std::string>, ClientTLSExtras);
  TlsContext() = default;

  Role role_ = Role::kServer;
  SslCtxPtr ctx_;
  std::vector<std::pair<std::string, SSL_CTX*>> sni_;  // name -> one of sniOwned_
  std::vector<SslCtxPtr> sniOwned_;
  std::string hostname_;
  bool hostnameIsIp_ = false;
  std::chrono::milliseconds handshakeTimeout_{10000};
  std::vector<std::string> protocols_;
  std::unique_ptr<std::string> npnWire_;  // NPN advertisement, length-prefixed
  bool resumeSessions_ = true;
  KtlsMode ktls_ = KtlsMode::kAuto;
  mutable std::mutex sessionMu_;
  mutable SslSessionPtr cachedSession_;
};

}  // namespace whorl::tls
