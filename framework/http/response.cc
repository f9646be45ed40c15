#include "framework/http/response.h"

#include "framework/http/syntax.h"

namespace whorl::http {

std::string formatResponseHead(const ResponseHead& head) {
  std::string out = "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  out += reasonPhrase(head.status);
  out += "\r\nContent-Type: ";
  out += head.contentType;
  out += "\r\nContent-Length: ";
  out += std::to_string(head.contentLength);
  out += "\r\n";
  out += head.fields;
  if (head.connection == ConnectionField::kKeepAlive) out += "Connection: keep-alive\r\n";
  if (head.connection == ConnectionField::kClose) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

ConnectionField connectionField(const Request& request) {
  if (!request.keepAlive()) return ConnectionField::kClose;
  return request.http11() ? ConnectionField::kNone : ConnectionField::kKeepAlive;
}

std::string errorResponse(const RequestError& error) {
  std::string body(reasonPhrase(error.status));
  for (char& c : body) c = lower(c);
  body += ": ";
  body += error.reason;
  body += '\n';
  ResponseHead head;
  head.status = error.status;
  head.contentLength = body.size();
  head.connection = ConnectionField::kClose;
  return formatResponseHead(head) + body;
}

}  // namespace whorl::http
