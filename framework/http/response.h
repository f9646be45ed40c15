// Response heads for the small HTTP/1.1 servers built on whorl: the status line, Content-Type,
// Content-Length, extra fields and the Connection field, formatted in one string.
//
//   http::ResponseHead head;                      // 200, text/plain, no Connection field
//   head.status = 405;
//   head.contentLength = body.size();
//   head.fields = "Allow: GET, HEAD\r\n";
//   head.connection = http::connectionField(request);
//   transport()->writeSequence({http::formatResponseHead(head), body});
//
// Pure functions; the strings are the caller's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "framework/http/request_parser.h"

namespace whorl::http {

// The Connection field of a response.
enum class ConnectionField : uint8_t {
  kNone,       // HTTP/1.1 keep-alive: nothing to say
  kKeepAlive,  // "Connection: keep-alive" (an HTTP/1.0 client that asked for it)
  kClose,      // "Connection: close": the server closes after this response
};

struct ResponseHead {
  int status = 200;
  std::string_view contentType = "text/plain; charset=utf-8";
  uint64_t contentLength = 0;
  std::string_view fields;  // more field lines, each ending in "\r\n"
  ConnectionField connection = ConnectionField::kNone;
};

// "HTTP/1.1 <status> <reason>\r\nContent-Type: ...\r\nContent-Length: ...\r\n<fields>
// [Connection: ...\r\n]\r\n".
std::string formatResponseHead(const ResponseHead& head);

// "OK", "Not Found", ... ("Unknown" for codes this table lacks).
std::string_view reasonPhrase(int status);

// The Connection field of a response to `request` from a server that keeps connections open as
// long as the request allows (Request::keepAlive()).
ConnectionField connectionField(const Request& request);

// The whole response to a request the parser rejected: error.status, a text body
// "<reason phrase>: <error.reason>\n" and "Connection: close".
std::string errorResponse(const RequestError& error);

}  // namespace whorl::http
