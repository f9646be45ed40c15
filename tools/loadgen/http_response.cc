#include "tools/loadgen/http_response.h"

#include <algorithm>
#include <cstring>

namespace whorl::loadgen {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool iequals(std::string_view s, std::string_view lowerLiteral) {
  if (s.size() != lowerLiteral.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (lower(s[i]) != lowerLiteral[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(token) for each comma-separated, trimmed, non-empty token.
template <typename Fn>
void forEachToken(std::string_view value, Fn fn) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view token = trim(value.substr(0, comma));
    if (!token.empty()) fn(token);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

HttpResponseParser::HttpResponseParser() { line_.reserve(256); }

void HttpResponseParser::reset() {
  state_ = State::kStatusLine;
  line_.clear();
  started_ = false;
  error_ = "";
}

void HttpResponseParser::beginResponse() {
  status_ = 0;
  minor_ = 1;
  close_ = false;
  keepAliveToken_ = false;
  chunked_ = false;
  otherEncoding_ = false;
  haveLength_ = false;
  length_ = 0;
  left_ = 0;
  bodyBytes_ = 0;
}

HttpResponseParser::Result HttpResponseParser::fail(const char* why) {
  state_ = State::kFailed;
  error_ = why;
  return Result::kError;
}

bool HttpResponseParser::takeLine(std::string_view data, size_t* pos, std::string_view* line) {
  std::string_view rest = data.substr(*pos);
  size_t nl = rest.find('\n');
  if (nl == std::string_view::npos) {
    line_.append(rest);
    *pos = data.size();
    return false;
  }
  std::string_view l;
  if (line_.empty()) {
    l = rest.substr(0, nl);
  } else {
    line_.append(rest.substr(0, nl));
    l = line_;
  }
  *pos += nl + 1;
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  *line = l;
  return true;
}

bool HttpResponseParser::parseStatusLine(std::string_view line) {
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return false;
  if (line[7] < '0' || line[7] > '9') return false;
  minor_ = line[7] - '0';
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return false;
    status = status * 10 + (line[i] - '0');
  }
  if (line.size() > 12 && line[12] != ' ') return false;
  if (status < 100) return false;
  status_ = status;
  return true;
}

bool HttpResponseParser::parseHeader(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') return true;  // obsolete folding: ignored
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view name = line.substr(0, colon);
  std::string_view value = trim(line.substr(colon + 1));
  switch (name.size()) {
    case 10:
      if (iequals(name, "connection")) {
        forEachToken(value, [this](std::string_view t) {
          if (iequals(t, "close")) close_ = true;
          if (iequals(t, "keep-alive")) keepAliveToken_ = true;
        });
      }
      break;
    case 14:
      if (iequals(name, "content-length")) {
        if (value.empty() || value.size() > 18) return false;
        uint64_t n = 0;
        for (char c : value) {
          if (c < '0' || c > '9') return false;
          n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        if (haveLength_ && n != length_) return false;  // conflicting lengths
        haveLength_ = true;
        length_ = n;
      }
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) {
        // Chunked only counts as the final coding.
        forEachToken(value, [this](std::string_view t) {
          chunked_ = iequals(t, "chunked");
          otherEncoding_ = !chunked_;
        });
      }
      break;
    default:
      break;
  }
  return true;
}

bool HttpResponseParser::headersDone() {
  keepAlive_ = minor_ >= 1 ? !close_ : (keepAliveToken_ && !close_);
  if (status_ == 204 || status_ == 304) return true;
  if (chunked_) {
    state_ = State::kChunkSize;
    return false;
  }
  if (otherEncoding_ || !haveLength_) {
    keepAlive_ = false;  // the body runs until the server closes
    state_ = State::kUntilClose;
    return false;
  }
  if (length_ == 0) return true;
  left_ = length_;
  state_ = State::kBody;
  return false;
}

HttpResponseParser::Result HttpResponseParser::feed(std::string_view data, size_t* used) {
  size_t pos = 0;
  auto done = [&](Result r) {
    *used = pos;
    return r;
  };
  auto complete = [&]() {
    state_ = State::kStatusLine;
    started_ = false;
    line_.clear();
    return done(Result::kComplete);
  };
  while (pos < data.size()) {
    std::string_view line;
    switch (state_) {
      case State::kFailed:
        return done(Result::kError);
      case State::kStatusLine:
        if (!started_) {
          started_ = true;
          beginResponse();
        }
        if (!takeLine(data, &pos, &line)) {
          if (line_.size() > kMaxLine) return done(fail("status line too long"));
          break;
        }
        if (line.empty()) {  // a stray CRLF between responses: skipped
          line_.clear();
          started_ = false;
          break;
        }
        if (!parseStatusLine(line)) return done(fail("malformed status line"));
        line_.clear();
        if (status_ == 101) return done(fail("101 Switching Protocols is not supported"));
        state_ = State::kHeaderLine;
        break;
      case State::kHeaderLine:
        if (!takeLine(data, &pos, &line)) {
          if (line_.size() > kMaxLine) return done(fail("header line too long"));
          break;
        }
        if (line.empty()) {
          line_.clear();
          if (status_ < 200) {  // interim (100 Continue, 103 Early Hints): the real one follows
            beginResponse();
            state_ = State::kStatusLine;
            break;
          }
          if (headersDone()) return complete();
          break;
        }
        if (!parseHeader(line)) return done(fail("malformed header"));
        line_.clear();
        break;
      case State::kBody: {
        uint64_t n = std::min<uint64_t>(left_, data.size() - pos);
        pos += n;
        left_ -= n;
        bodyBytes_ += n;
        if (left_ == 0) return complete();
        break;
      }
      case State::kChunkSize: {
        if (!takeLine(data, &pos, &line)) {
          if (line_.size() > kMaxLine) return done(fail("chunk size line too long"));
          break;
        }
        uint64_t size = 0;
        size_t digits = 0;
        for (char c : line) {
          int d = hexDigit(c);
          if (d < 0) break;
          if (++digits > 15) return done(fail("chunk size too large"));
          size = size * 16 + static_cast<uint64_t>(d);
        }
        if (digits == 0) return done(fail("malformed chunk size"));
        line_.clear();
        if (size == 0) {
          state_ = State::kTrailer;
        } else {
          left_ = size;
          state_ = State::kChunkData;
        }
        break;
      }
      case State::kChunkData: {
        uint64_t n = std::min<uint64_t>(left_, data.size() - pos);
        pos += n;
        left_ -= n;
        bodyBytes_ += n;
        if (left_ == 0) state_ = State::kChunkDataEnd;
        break;
      }
      case State::kChunkDataEnd:
        if (!takeLine(data, &pos, &line)) {
          if (line_.size() > 2) return done(fail("missing CRLF after chunk data"));
          break;
        }
        if (!line.empty()) return done(fail("missing CRLF after chunk data"));
        line_.clear();
        state_ = State::kChunkSize;
        break;
      case State::kTrailer:
        if (!takeLine(data, &pos, &line)) {
          if (line_.size() > kMaxLine) return done(fail("trailer line too long"));
          break;
        }
        line_.clear();
        if (line.empty()) return complete();
        break;
      case State::kUntilClose:
        bodyBytes_ += data.size() - pos;
        pos = data.size();
        break;
    }
  }
  return done(state_ == State::kFailed ? Result::kError : Result::kNeedMore);
}

HttpResponseParser::Result HttpResponseParser::finish() {
  if (state_ == State::kFailed) return Result::kError;
  if (state_ == State::kUntilClose) {
    state_ = State::kStatusLine;
    started_ = false;
    return Result::kComplete;
  }
  if (idle()) return Result::kNeedMore;
  return fail("connection closed in the middle of a response");
}

}  // namespace whorl::loadgen
