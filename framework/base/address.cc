#include "framework/base/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace whorl {

Result<Address> Address::parse(std::string_view host, uint16_t port) {
  std::string h(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return a;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return a;
  }
  return Status::invalidArgument("'" + std::string(host) + "' is not an IPv4 or IPv6 address");
}

Address Address::fromSockaddr(const struct sockaddr* sa, socklen_t len) {
  Address a;
  if (len > sizeof(a.storage_)) len = sizeof(a.storage_);
  std::memcpy(&a.storage_, sa, len);
  return a;
}

Address Address::anyIPv4(uint16_t port) {
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  v4->sin_family = AF_INET;
  v4->sin_addr.s_addr = htonl(INADDR_ANY);
  v4->sin_port = htons(port);
  return a;
}

Address Address::loopbackIPv4(uint16_t port) {
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  v4->sin_family = AF_INET;
  v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  v4->sin_port = htons(port);
  return a;
}

Address Address::fromSocketPeer(int fd) {
  Address a;
  socklen_t len = sizeof(a.storage_);
  if (getpeername(fd, a.mutableAddr(), &len) != 0) a.storage_.sa.sa_family = AF_UNSPEC;
  return a;
}

Address Address::fromSocketName(int fd) {
  Address a;
  socklen_t len = sizeof(a.storage_);
  if (getsockname(fd, a.mutableAddr(), &len) != 0) a.storage_.sa.sa_family = AF_UNSPEC;
  return a;
}

uint16_t Address::port() const {
  if (isIPv4()) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (isIPv6()) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

void Address::setPort(uint16_t port) {
  if (isIPv4()) reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  if (isIPv6()) reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
}

std::string Address::host() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (isIPv4()) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof(buf));
  } else if (isIPv6()) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof(buf));
  } else {
    return "unknown";
  }
  return buf;
}

std::string Address::toString() const {
  if (isIPv6()) return "[" + host() + "]:" + std::to_string(port());
  if (isIPv4()) return host() + ":" + std::to_string(port());
  return "unknown";
}

socklen_t Address::length() const {
  if (isIPv4()) return sizeof(sockaddr_in);
  if (isIPv6()) return sizeof(sockaddr_in6);
  return sizeof(storage_);
}

bool Address::operator==(const Address& other) const {
  return family() == other.family() && port() == other.port() && host() == other.host();
}

bool isIpLiteral(std::string_view host) { return Address::parse(host, 0).isOk(); }

}  // namespace whorl
