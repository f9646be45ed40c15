// TLS secrets out of OpenSSL: to kTLS, which needs this connection's TLS 1.3 traffic secrets,
// and to $SSLKEYLOGFILE (NSS key-log lines, so that a capture can be decrypted in Wireshark;
// opt-in by the environment variable, as in browsers and curl).
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "framework/base/ktls_probe.h"
#include "framework/base/log.h"
#include "framework/tls/context_hooks.h"
#include "framework/tls/session.h"

namespace whorl::tls {

namespace {

// The file is opened once per process, on the first context built, and shared by every thread.
std::mutex g_keylogMu;
FILE* g_keylog = nullptr;
bool g_keylogChecked = false;

void keylogCallback(const SSL* ssl, const char* line) {
  // kTLS needs the TLS 1.3 traffic secrets of this connection.
  if (auto* session = static_cast<TlsSession*>(SSL_get_ex_data(ssl, TlsSession::sessionIndex()))) {
    session->noteSecret(line);
  }
  std::lock_guard<std::mutex> lock(g_keylogMu);
  if (g_keylog != nullptr) {
    std::fprintf(g_keylog, "%s\n", line);
    std::fflush(g_keylog);
  }
}

}  // namespace

void installKeylog(SSL_CTX* ctx, KtlsMode ktls) {
  // OpenSSL formats every secret as hex text for this callback (one sprintf per byte, ~10% of a
  // handshake's CPU), so install it only where the secrets can be used: a kernel that takes
  // TLS (or ktls=require, which insists), or SSLKEYLOGFILE.
  if (ktls == KtlsMode::kRequire || (ktls == KtlsMode::kAuto && kernelTlsSupport().isOk())) {
    SSL_CTX_set_keylog_callback(ctx, keylogCallback);
  }
  {
    std::lock_guard<std::mutex> lock(g_keylogMu);
    if (!g_keylogChecked) {
      g_keylogChecked = true;
      const char* path = std::getenv("SSLKEYLOGFILE");
      if (path != nullptr && *path != '\0') {
        g_keylog = std::fopen(path, "a");
        if (g_keylog == nullptr) {
          WHORL_LOG(kWarning, "SSLKEYLOGFILE=%s: cannot open: %s", path, std::strerror(errno));
        } else {
          WHORL_LOG(kWarning, "SSLKEYLOGFILE=%s: writing TLS secrets; do not use in production", path);
        }
      }
    }
    if (g_keylog == nullptr) return;
  }
  SSL_CTX_set_keylog_callback(ctx, keylogCallback);
}

}  // namespace whorl::tls
