#include "framework/metrics/metrics_http.h"

#include "framework/http/response.h"

namespace whorl::metrics {

namespace {

std::string_view errorBody(int status) {
  return status == 404 ? "not found: metrics are at /metrics\n" : "method not allowed\n";
}

}  // namespace

void MetricsHttpProtocol::requestReceived(const http::Request& request) {
  bool persist = request.http11() && !request.connectionClose;
  bool isHead = request.method == "HEAD";
  if (request.method != "GET" && !isHead) {
    respond(405, persist, false);
  } else if (request.path() != "/metrics") {
    respond(404, persist, isHead);
  } else {
    respond(200, persist, isHead);
  }
}

void MetricsHttpProtocol::respond(int status, bool persist, bool headOnly) {
  std::string body;
  std::string_view bodyView;
  if (status == 200) {
    if (*body_) body = (*body_)();
    bodyView = body;
  } else {
    bodyView = errorBody(status);
  }
  http::ResponseHead head;
  head.status = status;
  if (status == 200) head.contentType = kExpositionContentType;
  head.contentLength = bodyView.size();
  if (status == 405) head.fields = "Allow: GET, HEAD\r\n";
  if (!persist) head.connection = http::ConnectionField::kClose;
  std::string h = http::formatResponseHead(head);
  if (headOnly) {
    transport()->write(h);
  } else {
    transport()->writeSequence({h, bodyView});
  }
  if (!persist) transport()->loseConnection();
}

std::shared_ptr<api::Factory> metricsHttpFactory(MetricsBody body) {
  return api::Factory::forProtocol<MetricsHttpProtocol>(
      std::shared_ptr<const MetricsBody>(std::make_shared<MetricsBody>(std::move(body))));
}

}  // namespace whorl::metrics
