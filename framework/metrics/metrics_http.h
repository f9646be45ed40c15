// MetricsHttpProtocol: a small HTTP/1.1 server protocol that serves Prometheus scrapes.
//
//   metrics::Registry registry(runtime.shardCount());
//   auto factory = metrics::metricsHttpFactory([&registry] { return registry.render(); });
//   auto port = endpoint::TCP4ServerEndpoint(runtime, 9100).listen(factory);  // or over TLS
//   // curl http://127.0.0.1:9100/metrics
//
// Requests: GET (or HEAD) /metrics, with or without a query, answers 200 with the body the
// factory's function returns, as Content-Type "text/plain; version=0.0.4; charset=utf-8". Other
// paths get 404, other methods 405 (Allow: GET, HEAD); the connection stays open after these.
// Requests are parsed by http::RequestParser (framework/http/request_parser.h), which says what is
// rejected: a malformed request (request line, header field, Content-Length, a missing or
// repeated Host) gets 400, a request line over 8 KiB 414, a request head (request line + header
// fields) over 8 KiB 431, a body framed with Transfer-Encoding 501 (chunked, which is not read)
// or 400 (anything else); each with a body naming the cause, and the connection is closed.
// Content-Length bodies are skipped. Keep-alive per HTTP/1.1: connections persist unless the
// request says "Connection: close"; HTTP/1.0 requests are answered and the connection closed
// (keep-alive is not offered to 1.0 clients). Pipelined requests are answered in order, each with
// one write (head and body in one writeSequence, the body not copied again).
//
// Ownership: the factory holds the function; every protocol it builds shares it. The function
// runs on whichever shard thread serves the scrape, possibly on several at once, so it must be
// thread-safe (Registry::render() is) and whatever it captures must outlive the listener.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "framework/api/protocol.h"
#include "framework/http/request_receiver.h"

namespace whorl::metrics {

using MetricsBody = std::function<std::string()>;

inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

class MetricsHttpProtocol : public http::RequestReceiver {
 public:
  // The limit on the request line, and on request line + header fields + the empty line.
  static constexpr size_t kMaxHeadBytes = 8 * 1024;

  explicit MetricsHttpProtocol(std::shared_ptr<const MetricsBody> body)
      : RequestReceiver({.maxRequestLine = kMaxHeadBytes, .maxHeadBytes = kMaxHeadBytes}),
        body_(std::move(body)) {}

  void requestReceived(const http::Request& request) override;

 private:
  void respond(int status, bool persist, bool headOnly);

  std::shared_ptr<const MetricsBody> body_;
};

// A factory building MetricsHttpProtocol for every connection, all sharing `body`.
std::shared_ptr<api::Factory> metricsHttpFactory(MetricsBody body);

}  // namespace whorl::metrics
