#include "framework/base/ktls_probe.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "framework/base/address.h"
#include "framework/base/log.h"

namespace whorl {

namespace {

Status probe() {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int server = -1;
  Status result;
  Address any = Address::loopbackIPv4(0);
  if (listener < 0 || client < 0 || bind(listener, any.addr(), any.length()) != 0 ||
      listen(listener, 1) != 0) {
    result = Status::fromErrno(errno, "kernel TLS probe: loopback socket");
  } else {
    Address bound = Address::fromSocketName(listener);
    if (connect(client, bound.addr(), bound.length()) != 0) {
      result = Status::fromErrno(errno, "kernel TLS probe: connect");
    } else {
      server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (setsockopt(client, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
        int err = errno;
        result = Status::fromErrno(err, "setsockopt TCP_ULP tls");
        if (err == ENOENT) {
          result = Status(Status::Code::kUnavailable,
                          result.message() + " (this kernel has no TLS module: CONFIG_TLS)", err);
        }
      }
    }
  }
  for (int fd : {listener, client, server}) {
    if (fd >= 0) close(fd);
  }
  return result;
}

}  // namespace

const Status& kernelTlsSupport() {
  static const Status result = [] {
    Status s = probe();
    if (s.isOk()) {
      WHORL_LOG(kInfo, "kernel TLS: available; TLS connections hand record crypto to the kernel");
    } else {
      WHORL_LOG(kInfo, "kernel TLS: not available (%s); TLS stays in userspace",
                s.message().c_str());
    }
    return s;
  }();
  return result;
}

}  // namespace whorl
