// Address: an IPv4 or IPv6 socket address (Twisted's IPv4Address/IPv6Address), a small value type.
//
//   auto a = Address::parse("127.0.0.1", 8000);   // Result<Address>
//   a->toString();                               // "127.0.0.1:8000"; IPv6 prints "[::1]:8000"
//   connect(fd, a->addr(), a->length());
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "framework/base/status.h"

namespace whorl {

class Address {
 public:
  Address() { storage_.sa.sa_family = AF_UNSPEC; }
  // Parses a numeric IPv4 or IPv6 literal (brackets around IPv6 are accepted).
  static Result<Address> parse(std::string_view host, uint16_t port);
  static Address fromSockaddr(const sockaddr* sa, socklen_t len);
  static Address anyIPv4(uint16_t port);
  static Address loopbackIPv4(uint16_t port);
  static Address fromSocketPeer(int fd);
  static Address fromSocketName(int fd);

  int family() const { return storage_.sa.sa_family; }
  bool isIPv4() const { return family() == AF_INET; }
  bool isIPv6() const { return family() == AF_INET6; }
  bool valid() const { return family() == AF_INET || family() == AF_INET6; }
  uint16_t port() const;
  void setPort(uint16_t port);
  std::string host() const;      // "127.0.0.1" or "::1"
  std::string toString() const;  // "127.0.0.1:80" or "[::1]:80"
  const struct sockaddr* addr() const { return reinterpret_cast<const struct sockaddr*>(&storage_); }
  struct sockaddr* mutableAddr() { return reinterpret_cast<struct sockaddr*>(&storage_); }
  socklen_t length() const;
  bool operator==(const Address& other) const;

 private:
  // IPv4 or IPv6 only: 28 bytes instead of sockaddr_storage's 128 (every connection holds two).
  union Storage {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  };
  Storage storage_{};
};

// True when `host` is an IPv4 or IPv6 literal rather than a name.
bool isIpLiteral(std::string_view host);

}  // namespace whorl
