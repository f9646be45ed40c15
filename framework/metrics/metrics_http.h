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
// A malformed request (request line, header field, Content-Length, a missing or repeated Host in
// HTTP/1.1), or a request head (request line + headers) over 8 KiB, gets 400 and the connection
// is closed; so does a body framed with Transfer-Encoding (501), which this parser does not read.
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
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "framework/api/protocol.h"

namespace whorl::metrics {

using MetricsBody = std::function<std::string()>;

inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

class MetricsHttpProtocol : public api::Protocol {
 public:
  // The limit on request line + header fields + the empty line that ends them.
  static constexpr size_t kMaxHeadBytes = 8 * 1024;

  explicit MetricsHttpProtocol(std::shared_ptr<const MetricsBody> body) : body_(std::move(body)) {}

  void dataReceived(std::string_view data) override;

 private:
  size_t process(std::string_view in);
  void handleRequest(std::string_view head);
  void respond(int status, bool persist, bool head);
  void reject(int status);

  std::shared_ptr<const MetricsBody> body_;
  std::string pending_;    // the start of a request split across reads
  size_t scanned_ = 0;     // bytes of pending_ already searched for the end of the head
  uint64_t bodyLeft_ = 0;  // request body bytes still to skip
  bool done_ = false;      // closing: further input is ignored
};

// A factory building MetricsHttpProtocol for every connection, all sharing `body`.
std::shared_ptr<api::Factory> metricsHttpFactory(MetricsBody body);

}  // namespace whorl::metrics
