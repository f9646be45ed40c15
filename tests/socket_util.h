// Blocking-socket helpers for loopback tests: a plain POSIX peer that nobody in whorl wrote.
//
//   int fd = testutil::connectTo(port);
//   testutil::sendAll(fd, "hello");
//   EXPECT_EQ(testutil::recvExactly(fd, 5), "hello");
//   close(fd);
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace testutil {

// A 127.0.0.1 port nothing listens on: bound to learn a free port, then closed (connects to it
// are refused; another process could take it meanwhile, which on a test machine does not happen).
inline uint16_t unusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Connects to 127.0.0.1:port; returns the fd or -errno.
inline int connectTo(uint16_t port, int rcvbuf = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

inline bool sendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads exactly n bytes, or fewer if the peer closes / an error / the timeout (ms) hits first.
inline std::string recvExactly(int fd, size_t n, int timeoutMs = 20000) {
  std::string out;
  out.reserve(n);
  char buf[65536];
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeoutMs) <= 0) break;
    size_t want = n - out.size() < sizeof(buf) ? n - out.size() : sizeof(buf);
    ssize_t r = recv(fd, buf, want, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// Reads until EOF (or error / timeout). Sets *err to the errno that ended it (0 for EOF, -1 for
// timeout).
inline std::string recvUntilEof(int fd, int* err = nullptr, int timeoutMs = 20000) {
  std::string out;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeoutMs) <= 0) {
      if (err) *err = -1;
      return out;
    }
    ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      if (err) *err = errno;
      return out;
    }
    if (r == 0) {
      if (err) *err = 0;
      return out;
    }
    out.append(buf, static_cast<size_t>(r));
  }
}

inline std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rng();
    for (size_t j = 0; j < 4 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

}  // namespace testutil
