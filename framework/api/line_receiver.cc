#include "framework/api/line_receiver.h"

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
  std::string joined;
  if (buffer_.empty()) {
    work_ = data;  // common case: no copy
  } else {
    buffer_.append(data);
    joined.swap(buffer_);
    work_ = joined;
  }
  pos_ = 0;
  while (pos_ < work_.size() && !halted()) {
    if (rawMode_) {
      std::string_view rest = work_.substr(pos_);
      pos_ = work_.size();
      rawDataReceived(rest);
      continue;
    }
    size_t end = work_.find(delimiter_, pos_);
    if (end == std::string_view::npos) {
      if (work_.size() - pos_ > maxLength_) {
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
