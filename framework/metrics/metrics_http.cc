#include "framework/metrics/metrics_http.h"

#include <algorithm>
#include <array>

#include "framework/base/http_syntax.h"

namespace whorl::metrics {

namespace {

// The request parsing follows examples/https_hello.cc (RFC 9110 / 9112), trimmed to what a
// scrape endpoint needs; the character classes are framework/base/http_syntax.h.

using http::fieldValueOk;
using http::iequals;
using http::isToken;
using http::istartsWith;
using http::targetOk;
using http::trimOws;

// The path of origin-form ("/metrics?x") or absolute-form ("http://host/metrics") targets.
std::string_view targetPath(std::string_view target) {
  if (istartsWith(target, "http://") || istartsWith(target, "https://")) {
    target.remove_prefix(target.find("//") + 2);
    size_t slash = target.find('/');
    if (slash == std::string_view::npos) return "/";
    target.remove_prefix(slash);
  }
  return target.substr(0, target.find('?'));
}

void connectionTokens(std::string_view value, bool* close) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    if (iequals(trimOws(value.substr(0, comma)), "close")) *close = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 501: return "Not Implemented";
    default: return "Error";
  }
}

std::string_view errorBody(int status) {
  switch (status) {
    case 400: return "bad request\n";
    case 404: return "not found: metrics are at /metrics\n";
    case 405: return "method not allowed\n";
    case 501: return "not implemented\n";
    default: return "error\n";
  }
}

}  // namespace

void MetricsHttpProtocol::dataReceived(std::string_view data) {
  if (done_) return;
  if (pending_.empty()) {
    // The common case: whole requests in this read, parsed in place.
    size_t used = process(data);
    if (!done_ && used < data.size()) pending_.assign(data.substr(used));
  } else {
    pending_.append(data);
    size_t used = process(pending_);
    if (done_) {
      pending_.clear();
    } else {
      pending_.erase(0, used);
    }
  }
  // What is left is the start of a head, searched to its end already: the next read resumes the
  // search there, so a head trickling in byte by byte costs linear time, not quadratic.
  scanned_ = pending_.size();
}

// Answers every complete request in `in`; returns how many bytes were consumed.
size_t MetricsHttpProtocol::process(std::string_view in) {
  size_t pos = 0;
  size_t scanned = scanned_;  // only valid for the first head, which started before this read
  while (!done_) {
    if (bodyLeft_ > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(bodyLeft_, in.size() - pos));
      pos += n;
      bodyLeft_ -= n;
      if (bodyLeft_ > 0) break;
    }
    // Empty lines before a request line are ignored (RFC 9112 §2.2).
    while (in.size() - pos >= 2 && in[pos] == '\r' && in[pos + 1] == '\n') pos += 2;
    if (pos == in.size()) break;
    size_t from = std::max(pos, scanned >= 3 ? scanned - 3 : 0);
    scanned = 0;
    size_t end = in.find("\r\n\r\n", from);
    if (end == std::string_view::npos) {
      if (in.size() - pos > kMaxHeadBytes) reject(400);
      break;
    }
    if (end + 4 - pos > kMaxHeadBytes) {
      reject(400);
      break;
    }
    handleRequest(in.substr(pos, end + 2 - pos));  // every line with its CRLF
    pos = end + 4;
  }
  return pos;
}

// `head`: the request line and header lines, each ending in CRLF.
void MetricsHttpProtocol::handleRequest(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return reject(400);
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return reject(400);
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!isToken(method) || !targetOk(target)) return reject(400);
  bool http11;
  if (version == "HTTP/1.1") {
    http11 = true;
  } else if (version == "HTTP/1.0") {
    http11 = false;
  } else {
    return reject(400);
  }

  bool close = false, chunked = false, haveLength = false;
  uint64_t length = 0;
  int hosts = 0;
  for (size_t pos = eol + 2; pos < head.size();) {
    size_t e = head.find("\r\n", pos);
    std::string_view field = head.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos) return reject(400);
    std::string_view name = field.substr(0, colon);
    std::string_view value = trimOws(field.substr(colon + 1));
    // A space before the colon or a folded line (leading space) is not a token: rejected.
    if (!isToken(name) || !fieldValueOk(value)) return reject(400);
    if (iequals(name, "host")) {
      ++hosts;
    } else if (iequals(name, "connection")) {
      connectionTokens(value, &close);
    } else if (iequals(name, "content-length")) {
      uint64_t n = 0;
      if (value.empty() || value.size() > 15) return reject(400);
      for (char c : value) {
        if (c < '0' || c > '9') return reject(400);
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (haveLength && n != length) return reject(400);
      haveLength = true;
      length = n;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = true;
    }
  }
  if (http11 && hosts != 1) return reject(400);  // RFC 9112 §3.2
  if (chunked) return reject(501);

  bool persist = http11 && !close;
  bool isHead = method == "HEAD";
  if (method != "GET" && !isHead) {
    respond(405, persist, false);
  } else if (targetPath(target) != "/metrics") {
    respond(404, persist, isHead);
  } else {
    respond(200, persist, isHead);
  }
  if (done_) return;
  bodyLeft_ = length;
}

void MetricsHttpProtocol::respond(int status, bool persist, bool head) {
  std::string body;
  std::string_view bodyView;
  if (status == 200) {
    if (*body_) body = (*body_)();
    bodyView = body;
  } else {
    bodyView = errorBody(status);
  }
  std::string h = "HTTP/1.1 ";
  h += std::to_string(status);
  h += ' ';
  h += reasonPhrase(status);
  h += "\r\nContent-Type: ";
  h += status == 200 ? kExpositionContentType : std::string_view("text/plain; charset=utf-8");
  h += "\r\nContent-Length: ";
  h += std::to_string(bodyView.size());
  h += "\r\n";
  if (status == 405) h += "Allow: GET, HEAD\r\n";
  if (!persist) h += "Connection: close\r\n";
  h += "\r\n";
  if (head) {
    transport()->write(h);
  } else {
    transport()->writeSequence({h, bodyView});
  }
  if (!persist) {
    done_ = true;
    transport()->loseConnection();
  }
}

void MetricsHttpProtocol::reject(int status) { respond(status, false, false); }

std::shared_ptr<api::Factory> metricsHttpFactory(MetricsBody body) {
  return api::Factory::forProtocol<MetricsHttpProtocol>(
      std::shared_ptr<const MetricsBody>(std::make_shared<MetricsBody>(std::move(body))));
}

}  // namespace whorl::metrics
