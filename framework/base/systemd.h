// systemd's readiness protocol (sd_notify) without libsystemd: one datagram to $NOTIFY_SOCKET.
//
//   notifySystemd("READY=1");       // after the listening sockets are open (Type=notify)
//   notifySystemd("RELOADING=1");   // ... "READY=1" again when the reload is done
//   notifySystemd("STOPPING=1");    // at the start of a graceful stop
//
// Outside systemd (no NOTIFY_SOCKET) every call is a successful no-op. The socket path may be a
// filesystem path or an abstract name starting with '@'. Thread-safe; owns nothing.
#pragma once

#include <string_view>

#include "framework/base/status.h"

namespace whorl {

Status notifySystemd(std::string_view state);

}  // namespace whorl
