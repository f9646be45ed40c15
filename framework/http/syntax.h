// The character classes of HTTP/1.1 messages (RFC 9110 / 9112), for the request parser and the
// small HTTP servers built on whorl: tokens, field values, request targets, Host values.
//
//   if (!http::isTchar(c)) return fail(400, "the method is not a token");
//   if (http::iequals(name, "connection")) http::forEachListElement(value, onOption);
//
// Pure functions on string_views; they own nothing.
#pragma once

#include <array>
#include <string_view>

namespace whorl::http {

namespace detail {
constexpr std::array<bool, 256> charTable(std::string_view extra, bool alnum) {
  std::array<bool, 256> t{};
  if (alnum) {
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  }
  for (char c : extra) t[static_cast<unsigned char>(c)] = true;
  return t;
}
// RFC 9110 tchar: the characters of methods, field names and list tokens.
inline constexpr std::array<bool, 256> kTchar = charTable("!#$%&'*+-.^_`|~", true);
// RFC 3986 uri-host and port: unreserved, pct-encoded, sub-delims, ':' and IP-literal brackets.
inline constexpr std::array<bool, 256> kHostChar = charTable("-._~%!$&'()*+,;=:[]", true);
}  // namespace detail

inline bool isTchar(char c) { return detail::kTchar[static_cast<unsigned char>(c)]; }

// Request-target characters: visible ASCII (RFC 3986 allows no spaces, controls or raw bytes
// over 0x7e; the parser checks characters only, not the URI's structure).
inline bool isTargetChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

// Field-value characters: visible characters, space, tab and obs-text; never CR, LF, NUL, other
// controls or DEL.
inline bool isFieldValueChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x20 ? u != 0x7f : u == '\t';
}

// A Host field value: uri-host [":" port] characters (may be empty, RFC 9112 §3.2).
inline bool hostOk(std::string_view s) {
  for (char c : s) {
    if (!detail::kHostChar[static_cast<unsigned char>(c)]) return false;
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

// Optional whitespace (spaces and tabs) around a field value or list element.
inline std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each non-empty element of a comma-separated list, trimmed (RFC 9110
// §5.6.1: empty elements are ignored). Stops early when fn returns false; returns false then.
template <class Fn>
bool forEachListElement(std::string_view value, Fn&& fn) {
  while (true) {
    size_t comma = value.find(',');
    std::string_view element = trimOws(value.substr(0, comma));
    if (!element.empty() && !fn(element)) return false;
    if (comma == std::string_view::npos) return true;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace whorl::http
