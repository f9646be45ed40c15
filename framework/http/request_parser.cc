#include "framework/http/request_parser.h"

#include <algorithm>

#include "framework/http/syntax.h"

namespace whorl::http {

namespace {

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::string_view Request::path() const {
  std::string_view t = target;
  if (istartsWith(t, "http://") || istartsWith(t, "https://")) {
    t.remove_prefix(t.find("//") + 2);
    size_t end = t.find_first_of("/?");
    if (end == std::string_view::npos || t[end] == '?') return "/";
    t.remove_prefix(end);
  }
  return t.substr(0, t.find('?'));
}

std::optional<std::string_view> Request::field(std::string_view name) const {
  std::string_view rest = head;
  rest.remove_prefix(std::min(rest.size(), rest.find('\n') + 1));  // the request line
  while (!rest.empty()) {
    size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(std::min(rest.size(), eol + 1));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the end of the head
    size_t colon = line.find(':');  // every field line has one: the parser checked
    if (equalsIgnoringCase(line.substr(0, colon), name)) return trimOws(line.substr(colon + 1));
  }
  return std::nullopt;
}

RequestParser::RequestParser(RequestLimits limits) : limits_(limits) {
  limits_.maxRequestLine = std::min(limits_.maxRequestLine, limits_.maxHeadBytes);
}

void RequestParser::reset() {
  state_ = State::kIdle;
  buffer_.clear();
  releaseBuffer_ = false;
  request_ = Request{};
  body_ = {};
  bodyLeft_ = 0;
  error_ = RequestError{};
}

bool RequestParser::fail(int status, const char* reason) {
  state_ = State::kFailed;
  error_ = RequestError{status, reason};
  bodyLeft_ = 0;
  return false;
}

void RequestParser::beginHead() {
  state_ = State::kMethod;
  request_ = Request{};
  hosts_ = 0;
  transferEncoding_ = false;
  chunkedLast_ = false;
}

RequestParser::Event RequestParser::feed(std::string_view data, size_t* used) {
  *used = 0;
  if (releaseBuffer_) {
    buffer_.clear();  // keeps its capacity for the next split head
    releaseBuffer_ = false;
  }
  if (state_ == State::kFailed) return Event::kError;
  if (state_ == State::kBody) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(bodyLeft_, data.size()));
    if (n == 0) return Event::kNeedMore;
    body_ = data.substr(0, n);
    bodyLeft_ -= n;
    if (bodyLeft_ == 0) state_ = State::kIdle;
    *used = n;
    return Event::kBody;
  }

  size_t end = 0;
  if (buffer_.empty()) {
    // No head started yet: skip empty lines (RFC 9112 §2.2), then parse the head in place.
    size_t pos = 0;
    for (; pos < data.size(); ++pos) {
      char c = data[pos];
      if (c == '\n') {
        state_ = State::kIdle;
      } else if (state_ == State::kIdleCR) {
        *used = pos + 1;
        fail(400, "a CR not followed by LF");
        return Event::kError;
      } else if (c == '\r') {
        state_ = State::kIdleCR;
      } else {
        if (state_ == State::kIdle) beginHead();
        break;
      }
    }
    if (pos == data.size()) {
      *used = pos;
      return Event::kNeedMore;
    }
    const char* head = data.data() + pos;
    size_t n = data.size() - pos;
    Scan r = scan(head, 0, n, &end);
    if (r == Scan::kMore) {
      buffer_.assign(head, n);  // at most maxHeadBytes: scan() fails beyond
      *used = data.size();
      return Event::kNeedMore;
    }
    *used = pos + end;
    if (r == Scan::kError) return Event::kError;
    return finishHead(head, end) ? Event::kRequest : Event::kError;
  }

  // The head started in an earlier call: append and go on where the scan stopped. Appending at
  // most one byte over the limit keeps the buffer bounded; scan() fails on that byte.
  size_t have = buffer_.size();
  size_t take = std::min(data.size(), limits_.maxHeadBytes + 1 - have);
  buffer_.append(data.data(), take);
  Scan r = scan(buffer_.data(), have, buffer_.size(), &end);
  if (r == Scan::kMore) {
    *used = take;
    return Event::kNeedMore;
  }
  *used = end - have;
  if (r == Scan::kError) {
    buffer_.clear();
    return Event::kError;
  }
  releaseBuffer_ = true;  // request()'s views point into buffer_ until the next feed()
  return finishHead(buffer_.data(), end) ? Event::kRequest : Event::kError;
}

RequestParser::Scan RequestParser::scan(const char* head, size_t from, size_t to, size_t* end) {
  for (size_t i = from; i < to; ++i) {
    Scan r = step(head, i);
    if (r != Scan::kMore) {
      *end = i + 1;  // the head's last byte, or the offending one
      return r;
    }
  }
  *end = to;
  return Scan::kMore;
}

RequestParser::Scan RequestParser::reject(int status, const char* reason) {
  fail(status, reason);
  return Scan::kError;
}

RequestParser::Scan RequestParser::step(const char* head, size_t i) {
  char c = head[i];
  bool inRequestLine = state_ == State::kMethod || state_ == State::kTarget ||
                       state_ == State::kVersion;
  // maxRequestLine counts the request line without its line end.
  if (inRequestLine && i >= limits_.maxRequestLine && c != '\r' && c != '\n') {
    return reject(414, "request line too long");
  }
  if (i >= limits_.maxHeadBytes) return reject(431, "request header fields too large");
  switch (state_) {
    case State::kMethod:
    case State::kTarget:
    case State::kVersion:
    case State::kRequestLineCR:
      return requestLineByte(head, i);
    case State::kFieldStart:
    case State::kFieldName:
    case State::kFieldValue:
    case State::kFieldCR:
    case State::kEndCR:
      return fieldByte(head, i);
    case State::kIdle:
    case State::kIdleCR:
    case State::kBody:
    case State::kFailed:
      break;
  }
  return reject(500, "request parser: scan() in a state outside the head");
}

RequestParser::Scan RequestParser::requestLineByte(const char* head, size_t i) {
  char c = head[i];
  switch (state_) {
    case State::kMethod:
      if (isTchar(c)) return Scan::kMore;
      if (c == ' ' && i > 0) {
        methodEnd_ = i;
        targetStart_ = i + 1;
        state_ = State::kTarget;
        return Scan::kMore;
      }
      if (c == '\r' || c == '\n') return reject(400, "request line without a target and version");
      return reject(400, c == ' ' ? "request line starts with a space" : "the method is not a token");
    case State::kTarget:
      if (isTargetChar(c)) return Scan::kMore;
      if (c == ' ' && i > targetStart_) {
        targetEnd_ = i;
        versionStart_ = i + 1;
        state_ = State::kVersion;
        return Scan::kMore;
      }
      if (c == ' ') return reject(400, "empty request target");
      if (c == '\r' || c == '\n') return reject(400, "request line without an HTTP version");
      return reject(400, "invalid character in the request target");
    case State::kVersion: {
      size_t k = i - versionStart_;
      if (k < 8) {
        bool ok = k < 5 ? c == "HTTP/"[k] : k == 6 ? c == '.' : c >= '0' && c <= '9';
        return ok ? Scan::kMore : reject(400, "malformed HTTP version");
      }
      if (c == '\r') {
        state_ = State::kRequestLineCR;
        return Scan::kMore;
      }
      if (c == '\n') return endRequestLine(head);
      return reject(400, "malformed HTTP version");
    }
    default:  // kRequestLineCR
      if (c != '\n') return reject(400, "a CR not followed by LF");
      return endRequestLine(head);
  }
}

RequestParser::Scan RequestParser::endRequestLine(const char* head) {
  if (head[versionStart_ + 5] != '1') {
    return reject(505, "HTTP version not supported: this server speaks HTTP/1.x");
  }
  request_.minorVersion = head[versionStart_ + 7] - '0';
  state_ = State::kFieldStart;
  return Scan::kMore;
}

RequestParser::Scan RequestParser::fieldByte(const char* head, size_t i) {
  char c = head[i];
  switch (state_) {
    case State::kFieldStart:
      if (c == '\r') {
        state_ = State::kEndCR;
        return Scan::kMore;
      }
      if (c == '\n') return Scan::kDone;
      if (c == ' ' || c == '\t') return reject(400, "a field line starts with whitespace (obs-fold)");
      if (!isTchar(c)) return reject(400, "a field name is not a token");
      lineStart_ = i;
      state_ = State::kFieldName;
      return Scan::kMore;
    case State::kFieldName:
      if (isTchar(c)) return Scan::kMore;
      if (c == ':') {
        colon_ = i;
        state_ = State::kFieldValue;
        return Scan::kMore;
      }
      if (c == ' ' || c == '\t') return reject(400, "whitespace between a field name and colon");
      if (c == '\r' || c == '\n') return reject(400, "a field line without a colon");
      return reject(400, "a field name is not a token");
    case State::kFieldValue:
      if (isFieldValueChar(c)) return Scan::kMore;
      if (c == '\r') {
        lineEnd_ = i;
        state_ = State::kFieldCR;
        return Scan::kMore;
      }
      if (c != '\n') return reject(400, "a control character in a field value");
      lineEnd_ = i;
      return endFieldLine(head);
    case State::kFieldCR:
      if (c != '\n') return reject(400, "a CR not followed by LF");
      return endFieldLine(head);
    default:  // kEndCR
      if (c != '\n') return reject(400, "a CR not followed by LF");
      return Scan::kDone;
  }
}

RequestParser::Scan RequestParser::endFieldLine(const char* head) {
  if (!fieldLine(head)) return Scan::kError;  // fieldLine() said why
  state_ = State::kFieldStart;
  return Scan::kMore;
}

bool RequestParser::fieldLine(const char* head) {
  std::string_view name(head + lineStart_, colon_ - lineStart_);
  std::string_view value = trimOws(std::string_view(head + colon_ + 1, lineEnd_ - colon_ - 1));
  switch (name.size()) {
    case 4:
      if (!iequals(name, "host")) break;
      if (++hosts_ > 1) return fail(400, "more than one Host field");
      if (!hostOk(value)) return fail(400, "an invalid Host value");
      break;
    case 10:
      if (!iequals(name, "connection")) break;
      forEachListElement(value, [this](std::string_view option) {
        if (iequals(option, "close")) request_.connectionClose = true;
        if (iequals(option, "keep-alive")) request_.connectionKeepAlive = true;
        return true;
      });
      break;
    case 14: {
      if (!iequals(name, "content-length")) break;
      // Digits, or a list of the same number repeated ("5, 5"): RFC 9110 §8.6.
      while (true) {
        size_t comma = value.find(',');
        std::string_view number = trimOws(value.substr(0, comma));
        if (number.empty() || number.size() > 18) return fail(400, "an invalid Content-Length");
        uint64_t n = 0;
        for (char c : number) {
          if (c < '0' || c > '9') return fail(400, "an invalid Content-Length");
          n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        if (request_.contentLength && *request_.contentLength != n) {
          return fail(400, "different Content-Length values");
        }
        request_.contentLength = n;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
      }
      break;
    }
    case 17: {
      if (!iequals(name, "transfer-encoding")) break;
      transferEncoding_ = true;
      bool any = false;
      forEachListElement(value, [&](std::string_view coding) {
        any = true;
        chunkedLast_ = iequals(trimOws(coding.substr(0, coding.find(';'))), "chunked");
        return true;
      });
      if (!any) return fail(400, "an empty Transfer-Encoding");
      break;
    }
    default:
      break;
  }
  return true;
}

bool RequestParser::finishHead(const char* head, size_t length) {
  if (request_.http11() && hosts_ == 0) return fail(400, "an HTTP/1.1 request without Host");
  if (transferEncoding_) {
    // RFC 9112 §6.1 and §6.3: each of these makes the body's length unknowable or ambiguous.
    if (request_.contentLength) return fail(400, "Content-Length together with Transfer-Encoding");
    if (!request_.http11()) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (!chunkedLast_) return fail(400, "Transfer-Encoding whose final coding is not chunked");
    return fail(501, "chunked request bodies are not supported");
  }
  request_.method = std::string_view(head, methodEnd_);
  request_.target = std::string_view(head + targetStart_, targetEnd_ - targetStart_);
  request_.head = std::string_view(head, length);
  bodyLeft_ = request_.contentLength.value_or(0);
  state_ = bodyLeft_ > 0 ? State::kBody : State::kIdle;
  return true;
}

}  // namespace whorl::http
