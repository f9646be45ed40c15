#include "framework/http/request_receiver.h"

#include "framework/base/log.h"
#include "framework/http/response.h"

namespace whorl::http {

void RequestReceiver::dataReceived(std::string_view data) {
  while (!data.empty() && !transport()->disconnecting()) {
    if (held_) {
      heldInput_.append(data);  // bounded: reading is paused while held
      return;
    }
    size_t used = 0;
    RequestParser::Event event = parser_.feed(data, &used);
    data.remove_prefix(used);
    switch (event) {
      case RequestParser::Event::kRequest:
        requestReceived(parser_.request());
        break;
      case RequestParser::Event::kBody:
        bodyReceived(parser_.body());
        break;
      case RequestParser::Event::kError:
        requestRejected(parser_.error());
        return;
      case RequestParser::Event::kNeedMore:
        return;
    }
  }
}

void RequestReceiver::holdRequests() {
  if (held_) return;
  held_ = true;
  transport()->pauseProducing();
}

void RequestReceiver::resumeRequests() {
  if (!held_) return;
  held_ = false;
  if (!flowPaused_) transport()->resumeProducing();
  std::string input = std::move(heldInput_);
  heldInput_.clear();
  dataReceived(input);
}

void RequestReceiver::pauseProducing() {
  flowPaused_ = true;
  Protocol::pauseProducing();
}

void RequestReceiver::resumeProducing() {
  flowPaused_ = false;
  if (!held_) Protocol::resumeProducing();
}

void RequestReceiver::requestRejected(const RequestError& error) {
  if (log::enabled(log::Level::kDebug)) {
    WHORL_LOG(kDebug, "closing connection from %s: %d %.*s",
              transport()->getPeer().toString().c_str(), error.status,
              static_cast<int>(error.reason.size()), error.reason.data());
  }
  transport()->write(errorResponse(error));
  transport()->loseConnection();
}

}  // namespace whorl::http
