// RequestParser: an incremental HTTP/1.1 request parser with no I/O (RFC 9112, server side).
// Bytes go in, split anywhere; requests, body bytes and errors come out, one event per call.
//
//   http::RequestParser parser;                 // one per connection
//   using E = http::RequestParser::Event;
//   while (!data.empty()) {
//     size_t used = 0;
//     E e = parser.feed(data, &used);            // stops after each event
//     data.remove_prefix(used);
//     if (e == E::kRequest) answer(parser.request());      // method, target, version, fields
//     if (e == E::kBody) skip(parser.body());               // Content-Length body bytes
//     if (e == E::kError) return reject(parser.error());    // status (400, 414, ...) and reason
//     if (e == E::kNeedMore) break;                         // all of `data` was used
//   }
//
// Rules (RFC 9112 for servers): lines end in CRLF or a bare LF (a CR elsewhere is an error);
// empty lines before a request line are skipped; the request line is exactly "method SP target
// SP HTTP/d.d" (the target's characters are checked, visible ASCII, not its form); HTTP/1.0 and
// 1.1 are served, 1.2-1.9 as 1.1, other majors get 505. Field names are tokens followed at once
// by ':'; a field line starting with whitespace (obs-fold) is 400.
// Field values must not hold controls other than tab. An HTTP/1.1 request needs exactly one Host,
// and no request may have two. Content-Length must be digits; repeated fields or a list with the
// same value ("5, 5") count as that value (RFC 9110 §8.6), different values are 400.
// Transfer-Encoding with Content-Length, in HTTP/1.0, or not ending in chunked is 400; chunked
// bodies are not decoded: 501. A request line longer than limits.maxRequestLine gets 414, a head
// (request line, fields and the empty line, line ends included) over limits.maxHeadBytes 431;
// both are detected as the bytes arrive, as is any bad character, so garbage is answered at once
// rather than waited on. After kError the parser stays failed until reset(): the connection should
// be answered and closed, since where the next request starts is unknown.
//
// Cost: whole heads in one chunk are parsed in place (the views point into `data`); a head split
// across calls is copied into a buffer the parser keeps (its capacity is reused; at most
// maxHeadBytes). Every byte is scanned once however the input is split. No global state: one
// parser per connection, on one thread.
//
// Ownership: the parser owns its buffer. request()'s views point into the `data` of the feed()
// call that returned kRequest or into that buffer; they are valid until the next feed() or reset()
// (and, for the in-place case, while the caller's `data` lives). body() points into `data`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace whorl::http {

struct RequestLimits {
  // The request line without its line end; longer: 414 (URI Too Long).
  size_t maxRequestLine = 8 * 1024;
  // Request line + field lines + the empty line, line ends included; more: 431 (Request Header
  // Fields Too Large). maxRequestLine is capped to it.
  size_t maxHeadBytes = 16 * 1024;
};

// Why a request cannot be served: the status to answer with (400, 414, 431, 501 or 505) and the
// cause, a static string ("Content-Length together with Transfer-Encoding").
struct RequestError {
  int status = 0;
  std::string_view reason;
};

// One parsed request head. The views are valid as RequestParser says.
struct Request {
  std::string_view method;  // a token, case-sensitive ("GET")
  std::string_view target;  // as sent: "/path?query", "http://host/path", "*", "host:port"
  int minorVersion = 1;     // HTTP/1.<minor>
  bool connectionClose = false;      // "Connection: close" among the Connection options
  bool connectionKeepAlive = false;  // "Connection: keep-alive"
  std::optional<uint64_t> contentLength;  // the body's length, if the request has one
  // The request line and the field lines with their line ends, up to and including the empty
  // line that ends them.
  std::string_view head;

  bool http11() const { return minorVersion >= 1; }
  // Whether the connection may stay open after the response (RFC 9112 §9.3): HTTP/1.1 unless
  // "Connection: close", HTTP/1.0 only with "Connection: keep-alive".
  bool keepAlive() const { return !connectionClose && (http11() || connectionKeepAlive); }
  // The target's path: without the query, and for absolute-form ("http://h/p") without scheme
  // and authority ("/" if it has no path).
  std::string_view path() const;
  // The value of the first field named `name` (any case), without surrounding whitespace, or
  // nullopt if there is none.
  std::optional<std::string_view> field(std::string_view name) const;
};

class RequestParser {
 public:
  enum class Event {
    kNeedMore,  // all of `data` was used; feed more
    kRequest,   // request() is a complete request head; body bytes (if any) follow as kBody
    kBody,      // body() is the next piece of the current request's body
    kError,     // error() says why; the parser stays failed
  };

  explicit RequestParser(RequestLimits limits = {});

  // Parses from the start of `data` until one event; *used is set to the bytes consumed (for
  // kNeedMore, all of them; for kError, up to and including the offending byte).
  Event feed(std::string_view data, size_t* used);
  // Forgets any partial request and a failure (for a new connection).
  void reset();

  const Request& request() const { return request_; }
  std::string_view body() const { return body_; }
  // Body bytes of the current request still to come.
  uint64_t bodyRemaining() const { return bodyLeft_; }
  const RequestError& error() const { return error_; }
  const RequestLimits& limits() const { return limits_; }

 private:
  enum class State : uint8_t {
    kIdle,           // before a request line: empty lines are skipped
    kIdleCR,         // a CR there: LF must follow
    kMethod,
    kTarget,
    kVersion,
    kRequestLineCR,  // CR after the version
    kFieldStart,     // at the start of a field line or the empty line
    kFieldName,
    kFieldValue,
    kFieldCR,        // CR at the end of a field line
    kEndCR,          // CR of the empty line
    kBody,
    kFailed,
  };
  enum class Scan : uint8_t { kMore, kDone, kError };

  // Runs the state machine over head[from, to) (offsets from the head's first byte); *end is set
  // to the offset after the last byte consumed.
  Scan scan(const char* head, size_t from, size_t to, size_t* end);
  // One byte, head[i]: checks the limits, then moves the state machine; kDone when the byte
  // ends the head, kError (after fail()) when it is not allowed where it is.
  Scan step(const char* head, size_t i);
  Scan requestLineByte(const char* head, size_t i);  // in the request line, or its CR
  Scan endRequestLine(const char* head);             // checks the version it holds
  Scan fieldByte(const char* head, size_t i);        // in a field line, or the empty line
  Scan endFieldLine(const char* head);
  Scan reject(int status, const char* reason);       // fail(), as a Scan
  bool fieldLine(const char* head);  // the field line that just ended; false on error
  bool finishHead(const char* head, size_t length);
  bool fail(int status, const char* reason);
  void beginHead();

  RequestLimits limits_;
  State state_ = State::kIdle;
  std::string buffer_;       // a head split across feed() calls
  bool releaseBuffer_ = false;  // buffer_ holds the last request's head: clear it on the next feed
  // Offsets in the head being parsed.
  size_t methodEnd_ = 0, targetStart_ = 0, targetEnd_ = 0, versionStart_ = 0;
  size_t lineStart_ = 0, colon_ = 0, lineEnd_ = 0;
  int hosts_ = 0;
  bool transferEncoding_ = false, chunkedLast_ = false;
  Request request_;
  std::string_view body_;
  uint64_t bodyLeft_ = 0;
  RequestError error_;
};

}  // namespace whorl::http
