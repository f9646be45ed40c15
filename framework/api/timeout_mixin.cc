#include "framework/api/timeout_mixin.h"

#include <cstdio>

#include "framework/base/log.h"

namespace whorl::api::detail {

void closeIdleConnection(Transport* transport, Reactor::Clock::duration period) {
  if (transport == nullptr || transport->disconnecting()) return;
  if (log::enabled(log::Level::kInfo)) {
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%g",
                  std::chrono::duration<double>(period).count());
    WHORL_LOG(kInfo, "closing connection from %s: idle timeout, no activity for %s s",
              transport->getPeer().toString().c_str(), seconds);
  }
  transport->loseConnection();
}

}  // namespace whorl::api::detail
