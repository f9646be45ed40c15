#include "framework/base/systemd.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace whorl {

Status notifySystemd(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Status::ok();
  size_t len = std::strlen(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (len >= sizeof(addr.sun_path)) {
    return Status::invalidArgument("NOTIFY_SOCKET is longer than a unix socket path may be");
  }
  std::memcpy(addr.sun_path, path, len);
  // An abstract socket is named with a leading NUL, which the environment spells '@'.
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::fromErrno(errno, "sd_notify socket");
  socklen_t addrLen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr), addrLen);
  int err = errno;
  close(fd);
  if (n < 0) return Status::fromErrno(err, "sd_notify to " + std::string(path));
  return Status::ok();
}

}  // namespace whorl
