// The character classes of HTTP/1.1 messages (RFC 9110 / 9112), for the small HTTP servers built
// on whorl (https_hello, the metrics endpoint): tokens, field values, request targets.
//
//   if (!http::isToken(method)) return reject(400);
//   if (http::iequals(http::trimOws(name), "connection")) ...
//
// Pure functions on string_views; they own nothing.
#pragma once

#include <array>
#include <string_view>

namespace whorl::http {

namespace detail {
// RFC 9110 tchar: the characters of methods and header names.
constexpr std::array<bool, 256> makeTcharTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
inline constexpr std::array<bool, 256> kTchar = makeTcharTable();
}  // namespace detail

inline bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!detail::kTchar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

// Case-insensitive comparison with a lower-case literal.
inline bool iequals(std::string_view s, std::string_view lowerLiteral) {
  if (s.size() != lowerLiteral.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != lowerLiteral[i]) return false;
  }
  return true;
}

inline bool istartsWith(std::string_view s, std::string_view lowerLiteral) {
  return s.size() >= lowerLiteral.size() && iequals(s.substr(0, lowerLiteral.size()), lowerLiteral);
}

// Optional whitespace (spaces and tabs) around a field value.
inline std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Field values: visible characters, spaces, tabs and obs-text; never CR, LF, NUL or controls.
inline bool fieldValueOk(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

// The request target: not empty, no spaces or controls.
inline bool targetOk(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace whorl::http
