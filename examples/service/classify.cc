#include "examples/service/classify.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace whorl::service {

namespace {
bool contains(std::string_view haystack, std::string_view needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                     [](char a, char b) {
                       return std::tolower(static_cast<unsigned char>(a)) ==
                              std::tolower(static_cast<unsigned char>(b));
                     }) != haystack.end();
}
}  // namespace

std::string_view handshakeFailureKind(const Status& reason) {
  const std::string& m = reason.message();
  if (reason.code() == Status::Code::kTimeout) return "timeout";
  if (reason.code() == Status::Code::kConnectionLost || reason.isCleanClose() ||
      contains(m, "peer closed the connection")) {
    return "peer_closed";
  }
  if (contains(m, "ktls")) return "ktls";
  // OpenSSL's reason strings, as TlsContext::describeFailure passes them on.
  if (contains(m, "http request") || contains(m, "wrong version number") ||
      contains(m, "unknown protocol") || contains(m, "packet length too long")) {
    return "not_tls";
  }
  if (contains(m, "unsupported protocol") || contains(m, "version too low") ||
      contains(m, "protocol version")) {
    return "version";
  }
  if (contains(m, "no shared cipher") || contains(m, "no suitable") ||
      contains(m, "no shared group") || contains(m, "handshake failure")) {
    return "no_shared_cipher";
  }
  if (contains(m, "did not return a certificate") || contains(m, "certificate required") ||
      contains(m, "certificate verify failed")) {
    return "client_certificate";
  }
  if (contains(m, "alert")) return "peer_alert";
  return "other";
}

std::string_view closeKind(const Status& reason) {
  if (reason.isOk() || reason.isCleanClose()) return "closed";
  switch (reason.code()) {
    case Status::Code::kTimeout:
      // The transport's send timeout (net::TransportOptions::sendTimeout) words it so.
      return reason.message().rfind("send timeout", 0) == 0 ? "send_timeout" : "timeout";
    case Status::Code::kConnectionLost: return "lost";
    case Status::Code::kAborted: return "aborted";
    case Status::Code::kTls: return "tls";
    case Status::Code::kIo: return "io";
    case Status::Code::kRefused: return "refused";
    default: return "other";
  }
}

}  // namespace whorl::service
