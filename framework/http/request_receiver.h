// RequestReceiver: a Protocol that parses HTTP/1.1 requests (RequestParser) and hands each one to
// requestReceived(), in order, pipelined or not; what cannot be parsed is answered with its error
// status, a body naming the cause, "Connection: close", and the connection is closed.
//
//   class Hello : public http::RequestReceiver {
//     void requestReceived(const http::Request& request) override {
//       http::ResponseHead head;
//       head.contentLength = 6;
//       head.connection = http::connectionField(request);
//       transport()->writeSequence({http::formatResponseHead(head), "hello\n"});
//       if (!request.keepAlive()) transport()->loseConnection();
//     }
//   };
//
// Once the transport is disconnecting (the protocol called loseConnection(), say after a
// "Connection: close" request), later input is ignored. Request bodies (Content-Length) go to
// bodyReceived(), which ignores them by default. A response that is not written at once (a file
// being sent) calls holdRequests(): the requests pipelined behind it wait, and reading pauses,
// until resumeRequests(). Combine with TimeoutMixin (TimeoutMixin<http::RequestReceiver>) to close
// idle connections.
//
// Ownership: the receiver owns its parser; the Request and body views passed to the callbacks are
// valid only during the call. Shard thread only, like any protocol.
#pragma once

#include <string>
#include <string_view>

#include "framework/api/protocol.h"
#include "framework/http/request_parser.h"

namespace whorl::http {

class RequestReceiver : public api::Protocol {
 public:
  explicit RequestReceiver(RequestLimits limits = {}) : parser_(limits) {}

  void dataReceived(std::string_view data) override;

  // A complete request head. The response is the protocol's to write (before the next request's,
  // to keep pipelined answers in order: write it here, or hold the connection until it is).
  virtual void requestReceived(const Request& request) = 0;
  // The next bytes of the current request's body.
  virtual void bodyReceived(std::string_view data) { (void)data; }
  // The input cannot be served. Default: log it (debug level), write errorResponse(error) and
  // loseConnection().
  virtual void requestRejected(const RequestError& error);

  // Stops delivering requests (after the one being handled) and pauses reading; bytes already
  // received are kept.
  void holdRequests();
  // Delivers the held requests (from within this call) and reads again.
  void resumeRequests();

  // Flow control: reading stays paused while requests are held. Overrides call these too.
  void pauseProducing() override;
  void resumeProducing() override;

  const RequestParser& parser() const { return parser_; }

 private:
  RequestParser parser_;
  bool held_ = false;        // holdRequests() until resumeRequests()
  bool flowPaused_ = false;  // the transport asked us to pause (too many bytes unsent)
  std::string heldInput_;    // input received while held
};

}  // namespace whorl::http
