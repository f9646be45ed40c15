#include "framework/api/line_receiver.h"

#include <algorithm>

#include "framework/base/log.h"

namespace whorl::api {

bool LineReceiver::halted() const { return transport() != nullptr && transport()->disconnecting(); }

void LineReceiver::dataReceived(std::string_view data) {
  if (busy_) {
    // Fed from inside a callback (setLineMode(extra), or a layer below): keep order.
    reentrant_.append(data);
    return;
  }
  busy_ = true;
  process(data);
  while (!reentrant_.empty() && !halted()) {
    std::string more;
    more.swap(reentrant_);
    process(more);
  }
  busy_ = false;
}

void LineReceiver::process(std::string_view data) {
  const std::string& d = delimiter_;
  if (halted()) {
    buffer_.append(data);  // closing: keep, never deliver
    return;
  }
  work_ = data;
  pos_ = 0;
  if (!buffer_.empty() && !rawMode_ && buffer_.find(d) == std::string::npos) {
    // A partial line is buffered. Complete it with only the head of the new data (the rest is
    // parsed in place), so a long line arriving in small pieces costs O(length), not O(length^2).
    size_t lineEnd = std::string::npos;
    size_t resume = 0;
    // The delimiter may straddle the old and the new bytes; a longer overlap is an earlier match.
    for (size_t k = std::min(d.size() - 1, buffer_.size()); k >= 1; --k) {
      if (buffer_.compare(buffer_.size() - k, k, d, 0, k) == 0 && data.size() >= d.size() - k &&
          data.compare(0, d.size() - k, std::string_view(d).substr(k)) == 0) {
        lineEnd = buffer_.size() - k;
        resume = d.size() - k;
        break;
      }
    }
    if (lineEnd == std::string::npos) {
      size_t f = data.find(d);
      if (f == std::string_view::npos) {
        buffer_.append(data);
        work_ = {};
        // Only a line that cannot end within the limit is too long (the tail might be the
        // first bytes of the delimiter).
        if (buffer_.size() >= maxLength_ + d.size()) {
          std::string partial;
          partial.swap(buffer_);
          lineLengthExceeded(partial);
        }
        return;
      }
      buffer_.append(data.substr(0, f));
      lineEnd = buffer_.size();
      resume = f + d.size();
    }
    std::string line;
    line.swap(buffer_);
    line.resize(lineEnd);
    pos_ = resume;
    if (line.size() > maxLength_) {
      lineLengthExceeded(line);
    } else {
      lineReceived(line);
    }
  } else if (!buffer_.empty()) {
    // Raw mode, or a delimiter change left complete lines in the buffer: parse it all in place.
    buffer_.append(data);
    std::string joined;
    joined.swap(buffer_);
    parse(joined);
    return;
  }
  parse(work_);
}

void LineReceiver::parse(std::string_view chunk) {
  work_ = chunk;
  while (pos_ < work_.size() && !halted()) {
    if (rawMode_) {
      std::string_view rest = work_.substr(pos_);
      pos_ = work_.size();
      rawDataReceived(rest);
      continue;
    }
    size_t end = work_.find(delimiter_, pos_);
    if (end == std::string_view::npos) {
      if (work_.size() - pos_ >= maxLength_ + delimiter_.size()) {
        std::string_view partial = work_.substr(pos_);
        pos_ = work_.size();
        lineLengthExceeded(partial);
      }
      break;
    }
    std::string_view line = work_.substr(pos_, end - pos_);
    pos_ = end + delimiter_.size();
    if (line.size() > maxLength_) {
      lineLengthExceeded(line);
      continue;
    }
    lineReceived(line);
  }
  if (pos_ < work_.size()) buffer_.append(work_.substr(pos_));
  work_ = {};
  pos_ = 0;
}

void LineReceiver::lineLengthExceeded(std::string_view partialLine) {
  WHORL_LOG(kWarning, "closing connection from %s: line of %zu bytes exceeds the limit of %zu",
            transport() ? transport()->getPeer().toString().c_str() : "?", partialLine.size(),
            maxLength_);
  if (transport() != nullptr) transport()->loseConnection();
}

void LineReceiver::sendLine(std::string_view line) {
  if (transport() == nullptr) return;
  transport()->writeSequence({line, delimiter_});
}

void LineReceiver::setLineMode(std::string_view extra) {
  rawMode_ = false;
  if (!extra.empty()) dataReceived(extra);
}

std::string LineReceiver::clearLineBuffer() {
  std::string rest;
  if (busy_) {
    rest.append(work_.substr(pos_));
    pos_ = work_.size();
  }
  rest.append(buffer_);
  buffer_.clear();
  rest.append(reentrant_);
  reentrant_.clear();
  return rest;
}

}  // namespace whorl::api
