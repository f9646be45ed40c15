// Short, stable names for why a connection ended or a TLS handshake failed: the label values of
// the echo service's metrics and the `kind` of its log lines (people and alerts match on these,
// so the set is fixed; the full reason stays in the log line).
//
//   metrics.handshakesFailed.inc(shard, handshakeFailureKind(reason));   // "client_certificate"
//   metrics.closed.inc(shard, closeKind(reason));                        // "idle_timeout"
#pragma once

#include <string_view>

#include "framework/base/status.h"

namespace whorl::service {

// timeout, peer_closed, not_tls, version, no_shared_cipher, client_certificate, peer_alert,
// ktls, other.
std::string_view handshakeFailureKind(const Status& reason);

// closed (an orderly close), send_timeout (the client stopped reading), timeout (TLS handshake,
// PROXY header), lost (reset, or TLS without close_notify), aborted (drain deadline,
// abortConnection), tls, io, refused, other. Idle timeouts are the caller's to name.
std::string_view closeKind(const Status& reason);

}  // namespace whorl::service
