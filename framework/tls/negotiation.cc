// ALPN and NPN: the wire form of a protocol list, and the callbacks that pick one during the
// handshake (the server selects ALPN, the client selects NPN; see context_hooks.h).
#include <cstring>

#include "framework/tls/context_hooks.h"

namespace whorl::tls {

namespace {

// The seed's rule for the selecting side: the earliest protocol in our own list that the peer
// also offers. No overlap fails the handshake rather than leaving the protocol ambiguous.
bool selectProtocol(const std::vector<std::string>& ours, const unsigned char* theirs,
                    unsigned theirsLen, const unsigned char** out, unsigned char* outLen) {
  for (const auto& p : ours) {
    unsigned i = 0;
    while (i < theirsLen) {
      unsigned len = theirs[i];
      if (i + 1 + len > theirsLen) break;
      if (len == p.size() && std::memcmp(theirs + i + 1, p.data(), len) == 0) {
        *out = theirs + i + 1;
        *outLen = static_cast<unsigned char>(len);
        return true;
      }
      i += 1 + len;
    }
  }
  return false;
}

}  // namespace

std::string wireProtocols(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const auto& p : protocols) {
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  return wire;
}

int alpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outLen, const unsigned char* in,
               unsigned inLen, void*) {
  const TlsContext* ctx = contextOf(ssl);
  if (ctx == nullptr) return SSL_TLSEXT_ERR_NOACK;
  if (selectProtocol(ctx->acceptableProtocols(), in, inLen, out, outLen)) return SSL_TLSEXT_ERR_OK;
  return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
}

int npnAdvertise(SSL* ssl, const unsigned char** out, unsigned* outLen, void* arg) {
  (void)ssl;
  auto* wire = static_cast<std::string*>(arg);
  *out = reinterpret_cast<const unsigned char*>(wire->data());
  *outLen = static_cast<unsigned>(wire->size());
  return SSL_TLSEXT_ERR_OK;
}

int npnSelect(SSL* ssl, unsigned char** out, unsigned char* outLen, const unsigned char* in,
              unsigned inLen, void*) {
  const TlsContext* ctx = contextOf(ssl);
  if (ctx == nullptr) return SSL_TLSEXT_ERR_NOACK;
  const unsigned char* chosen = nullptr;
  if (selectProtocol(ctx->acceptableProtocols(), in, inLen, &chosen, outLen)) {
    *out = const_cast<unsigned char*>(chosen);
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

unsigned protocolNegotiationMechanisms() {
  unsigned m = kALPN;
#ifndef OPENSSL_NO_NEXTPROTONEG
  m |= kNPN;
#endif
  return m;
}

}  // namespace whorl::tls
