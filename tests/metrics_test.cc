// Tests for framework/metrics: exact exposition text, escaping, registration rules, exact sums
// under concurrent per-shard increments (with a scraper running), and the /metrics HTTP protocol
// over an in-memory transport (byte-by-byte and whole input, errors, keep-alive, pipelining).
#include "framework/metrics/metrics.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "framework/http/response.h"
#include "framework/metrics/metrics_http.h"
#include "tests/fake_transport.h"

namespace whorl::metrics {
namespace {

// --- rendering ---------------------------------------------------------------------------------

TEST(MetricsRender, WholeTextOfASmallRegistry) {
  Registry r(2);
  auto& accepted = r.counter("whorl_connections_accepted", "Connections accepted.");
  auto& ok = r.counter("whorl_handshakes_total", "TLS handshakes.", {{"result", "ok"}});
  auto& failed =
      r.dynamicCounter("whorl_handshakes", "TLS handshakes.", "reason", {{"result", "failed"}});
  auto& open = r.gauge("whorl_connections_open", "Connections open now.", {}, ShardLabel::kSummed);
  auto& bytes =
      r.counter("whorl_bytes", "Bytes by direction.", {{"dir", "in"}}, ShardLabel::kSummed);
  r.counter("whorl_bytes", "Bytes by direction.", {{"dir", "out"}}, ShardLabel::kSummed).inc(1, 7);
  auto& queue = r.gauge("whorl_queue_depth", "Queued work per shard.");

  accepted.inc(0, 3);
  accepted.inc(1, 4);
  ok.inc(0);
  ok.inc(1, 2);
  failed.inc(1, "certificate");
  failed.inc(0, "alert");
  failed.inc(1, "alert", 5);
  open.add(0, 5);
  open.add(1, -2);
  bytes.inc(0, 100);
  bytes.inc(1, 23);
  queue.set(0, -1);
  queue.set(1, 9);

  EXPECT_EQ(r.render(),
            "# HELP whorl_bytes_total Bytes by direction.\n"
            "# TYPE whorl_bytes_total counter\n"
            "whorl_bytes_total{dir=\"in\"} 123\n"
            "whorl_bytes_total{dir=\"out\"} 7\n"
            "# HELP whorl_connections_accepted_total Connections accepted.\n"
            "# TYPE whorl_connections_accepted_total counter\n"
            "whorl_connections_accepted_total{shard=\"0\"} 3\n"
            "whorl_connections_accepted_total{shard=\"1\"} 4\n"
            "# HELP whorl_connections_open Connections open now.\n"
            "# TYPE whorl_connections_open gauge\n"
            "whorl_connections_open 3\n"
            "# HELP whorl_handshakes_total TLS handshakes.\n"
            "# TYPE whorl_handshakes_total counter\n"
            "whorl_handshakes_total{result=\"ok\",shard=\"0\"} 1\n"
            "whorl_handshakes_total{result=\"ok\",shard=\"1\"} 2\n"
            "whorl_handshakes_total{result=\"failed\",reason=\"alert\",shard=\"0\"} 1\n"
            "whorl_handshakes_total{result=\"failed\",reason=\"alert\",shard=\"1\"} 5\n"
            "whorl_handshakes_total{result=\"failed\",reason=\"certificate\",shard=\"0\"} 0\n"
            "whorl_handshakes_total{result=\"failed\",reason=\"certificate\",shard=\"1\"} 1\n"
            "# HELP whorl_queue_depth Queued work per shard.\n"
            "# TYPE whorl_queue_depth gauge\n"
            "whorl_queue_depth{shard=\"0\"} -1\n"
            "whorl_queue_depth{shard=\"1\"} 9\n");

  EXPECT_EQ(accepted.value(), 7u);
  EXPECT_EQ(accepted.value(1), 4u);
  EXPECT_EQ(open.value(), 3);
  EXPECT_EQ(open.value(1), -2);
  EXPECT_EQ(failed.value("alert"), 6u);
  EXPECT_EQ(failed.value(0, "certificate"), 0u);
}

TEST(MetricsRender, EmptyRegistryAndFamilyWithoutSamples) {
  Registry r(1);
  EXPECT_EQ(r.render(), "");
  r.dynamicCounter("errors", "Errors by kind.", "kind", {}, ShardLabel::kSummed);
  EXPECT_EQ(r.render(), "# HELP errors_total Errors by kind.\n# TYPE errors_total counter\n");
}

TEST(MetricsRender, LabelValuesAndHelpAreEscaped) {
  Registry r(1);
  r.counter("c", "Help with \\ backslash,\nnewline and \"quotes\".",
            {{"path", "C:\\dir\\"}, {"q", "say \"hi\"\nbye"}}, ShardLabel::kSummed)
      .inc(0);
  EXPECT_EQ(r.render(),
            "# HELP c_total Help with \\\\ backslash,\\nnewline and \"quotes\".\n"
            "# TYPE c_total counter\n"
            "c_total{path=\"C:\\\\dir\\\\\",q=\"say \\\"hi\\\"\\nbye\"} 1\n");

  EXPECT_EQ(escapeLabelValue("plain"), "plain");
  EXPECT_EQ(escapeLabelValue("a\\b\"c\nd\te"), "a\\\\b\\\"c\\nd\te");
  // Valid UTF-8 passes; invalid bytes (a stray continuation, a truncated sequence, an overlong
  // slash, a surrogate) become U+FFFD each.
  EXPECT_EQ(escapeLabelValue("caf\xC3\xA9 \xF0\x9F\x99\x82"), "caf\xC3\xA9 \xF0\x9F\x99\x82");
  EXPECT_EQ(escapeLabelValue("a\x80z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(escapeLabelValue("a\xC3"), "a\xEF\xBF\xBD");
  EXPECT_EQ(escapeLabelValue("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(escapeLabelValue("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(escapeHelp("a\"b\\c\nd"), "a\"b\\\\c\\nd");
}

TEST(MetricsRender, DynamicKeysAreEscapedAndCapped) {
  Registry r(1);
  auto& errors = r.dynamicCounter("errors", "Errors.", "kind", {}, ShardLabel::kSummed, 2);
  errors.inc(0, "a\"b");
  errors.inc(0, "x\n");
  errors.inc(0, "third");   // over the cap: counted as "other"
  errors.inc(0, "fourth");  // likewise
  errors.inc(0, "a\"b");    // known keys still count as themselves
  EXPECT_EQ(errors.value("other"), 2u);
  EXPECT_EQ(errors.value("third"), 0u);
  EXPECT_EQ(r.render(),
            "# HELP errors_total Errors.\n"
            "# TYPE errors_total counter\n"
            "errors_total{kind=\"a\\\"b\"} 2\n"
            "errors_total{kind=\"other\"} 2\n"
            "errors_total{kind=\"x\\n\"} 1\n");
}

TEST(MetricsRender, HandWrittenSamples) {
  std::string out;
  appendFamilyHeader(out, "process_start_time_seconds", "Start time.", Type::kGauge);
  appendSample(out, "process_start_time_seconds", {}, 1700000000.25);
  appendSample(out, "x", {{"k", "v"}}, std::numeric_limits<double>::quiet_NaN());
  appendSample(out, "x", {}, std::numeric_limits<double>::infinity());
  appendSample(out, "x", {}, -std::numeric_limits<double>::infinity());
  appendSample(out, "x", {}, 1e20);
  appendSample(out, "x", {}, int64_t{-5});
  appendSample(out, "x", {}, uint64_t{18446744073709551615u});
  EXPECT_EQ(out,
            "# HELP process_start_time_seconds Start time.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds 1700000000.25\n"
            "x{k=\"v\"} NaN\n"
            "x +Inf\n"
            "x -Inf\n"
            "x 1e+20\n"
            "x -5\n"
            "x 18446744073709551615\n");
}

// --- registration ------------------------------------------------------------------------------

TEST(MetricsRegistry, SameSeriesTwiceIsTheSameHandle) {
  Registry r(3);
  auto& a = r.counter("requests", "Requests.", {{"code", "200"}});
  auto& b = r.counter("requests_total", "Requests.", {{"code", "200"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &r.counter("requests", "Requests.", {{"code", "404"}}));
  // Label order does not make another series.
  auto& g1 = r.gauge("g", "G.", {{"a", "1"}, {"b", "2"}});
  auto& g2 = r.gauge("g", "G.", {{"b", "2"}, {"a", "1"}});
  EXPECT_EQ(&g1, &g2);
  auto& d1 = r.dynamicCounter("errs", "E.", "kind");
  EXPECT_EQ(&d1, &r.dynamicCounter("errs_total", "E.", "kind"));
  EXPECT_EQ(r.shardCount(), 3);
}

TEST(MetricsRegistry, NameRules) {
  EXPECT_TRUE(isValidMetricName("whorl_up"));
  EXPECT_TRUE(isValidMetricName(":recorded:rule"));
  EXPECT_FALSE(isValidMetricName(""));
  EXPECT_FALSE(isValidMetricName("9lives"));
  EXPECT_FALSE(isValidMetricName("has-dash"));
  EXPECT_TRUE(isValidLabelName("reason"));
  EXPECT_TRUE(isValidLabelName("_x1"));
  EXPECT_FALSE(isValidLabelName("__name__"));
  EXPECT_FALSE(isValidLabelName("a:b"));
  EXPECT_FALSE(isValidLabelName("1a"));
}

TEST(MetricsRegistryDeathTest, MisuseAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(Registry(0), "at least one shard");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("bad name", "x");
      },
      "invalid metric name");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("c", "x", {{"shard", "1"}});
      },
      "added by the registry");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.counter("c", "x", {{"a", "1"}, {"a", "2"}});
      },
      "given twice");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.dynamicCounter("c", "x", "a", {{"a", "1"}});
      },
      "given twice");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.gauge("c_total", "x");
        r.counter("c", "x");
      },
      "both counter and gauge");
  EXPECT_DEATH(
      {
        Registry r(1);
        r.gauge("g", "x");
        r.gauge("g", "y", {{"a", "1"}});
      },
      "two HELP texts");
}

TEST(MetricsRegistry, SummedFamiliesMayUseAShardLabelOfTheirOwn) {
  Registry r(2);
  r.gauge("g", "G.", {{"shard", "all"}}, ShardLabel::kSummed).set(1, 4);
  EXPECT_EQ(r.render(), "# HELP g G.\n# TYPE g gauge\ng{shard=\"all\"} 4\n");
}

// --- concurrency -------------------------------------------------------------------------------

TEST(MetricsConcurrency, PerShardIncrementsSumExactly) {
  constexpr int kShards = 4;
  constexpr int kIterations = 200000;
  Registry r(kShards);
  auto& counter = r.counter("ops", "Operations.");
  auto& summed = r.counter("ops_summed", "Operations.", {}, ShardLabel::kSummed);
  auto& gauge = r.gauge("level", "Level.");
  auto& errors = r.dynamicCounter("errors", "Errors.", "kind");
  // Every shard bumps a second set of cells in between: neighbouring cells of one slab.
  std::vector<Counter*> neighbours;
  for (int i = 0; i < 20; ++i) {
    neighbours.push_back(&r.counter("n" + std::to_string(i), "Neighbour."));
  }

  std::atomic<bool> stop{false};
  // A scraper renders while the shards count: exercises the read side under TSan/ASan and checks
  // that the sum never goes backwards.
  std::thread scraper([&] {
    uint64_t last = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      std::string text = r.render();
      EXPECT_FALSE(text.empty());
      uint64_t now = counter.value();
      EXPECT_GE(now, last);
      last = now;
    }
  });
  std::vector<std::thread> shards;
  for (int s = 0; s < kShards; ++s) {
    shards.emplace_back([&, s] {
      for (int i = 0; i < kIterations; ++i) {
        counter.inc(s);
        summed.inc(s, 2);
        gauge.add(s, (i % 2 == 0) ? 3 : -1);
        neighbours[static_cast<size_t>(i % 20)]->inc(s);
        if (i % 100 == 0) errors.inc(s, i % 200 == 0 ? "even" : "odd");
      }
    });
  }
  for (auto& t : shards) t.join();
  stop = true;
  scraper.join();

  EXPECT_EQ(counter.value(), uint64_t{kShards} * kIterations);
  for (int s = 0; s < kShards; ++s) EXPECT_EQ(counter.value(s), uint64_t{kIterations});
  EXPECT_EQ(summed.value(), 2u * kShards * kIterations);
  EXPECT_EQ(gauge.value(), int64_t{kShards} * (kIterations / 2) * 2);
  uint64_t neighbourSum = 0;
  for (auto* n : neighbours) neighbourSum += n->value();
  EXPECT_EQ(neighbourSum, uint64_t{kShards} * kIterations);
  EXPECT_EQ(errors.value("even"), uint64_t{kShards} * (kIterations / 200));
  EXPECT_EQ(errors.value("odd"), uint64_t{kShards} * (kIterations / 200));

  std::string text = r.render();
  EXPECT_NE(text.find("ops_total{shard=\"3\"} 200000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ops_summed_total 1600000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("errors_total{kind=\"even\",shard=\"0\"} 1000\n"), std::string::npos);
}

TEST(MetricsConcurrency, RegistrationWhileShardsCount) {
  Registry r(2);
  auto& first = r.counter("first", "First.");
  std::thread shard([&] {
    for (int i = 0; i < 100000; ++i) first.inc(1);
  });
  // New series (and new slab chunks) while shard 1 increments: existing cells never move.
  for (int i = 0; i < 200; ++i) r.counter("late" + std::to_string(i), "Late.").inc(0);
  shard.join();
  EXPECT_EQ(first.value(), 100000u);
  EXPECT_EQ(r.counter("late199", "Late.").value(0), 1u);
}

// --- HTTP --------------------------------------------------------------------------------------

constexpr std::string_view kBody = "# HELP up Up.\n# TYPE up gauge\nup 1\n";

std::string ok200(bool close = false, bool head = false) {
  std::string r =
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
      "Content-Length: " +
      std::to_string(kBody.size()) + "\r\n";
  if (close) r += "Connection: close\r\n";
  r += "\r\n";
  if (!head) r += kBody;
  return r;
}

std::string error(int status, std::string_view reason, std::string_view body, bool close,
                  std::string_view extra = {}) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                  "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n" + std::string(extra);
  if (close) r += "Connection: close\r\n";
  return r + "\r\n" + std::string(body);
}

std::string notFound(bool close = false) {
  return error(404, "Not Found", "not found: metrics are at /metrics\n", close);
}
// What framework/http answers to a request it cannot serve: the status, the cause, a close.
std::string rejected(int status, std::string_view reason) {
  return http::errorResponse({status, reason});
}

constexpr std::string_view kGet = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";

class MetricsHttpTest : public ::testing::Test {
 protected:
  MetricsHttpTest() {
    factory_ = metricsHttpFactory([this] {
      ++calls_;
      return std::string(kBody);
    });
    protocol_ = factory_->build(Address::loopbackIPv4(40000));
    transport_.connect(protocol_.get());
  }

  // Feeds `input` in chunks of `chunk` bytes (0: all at once) and returns what was written.
  std::string feed(std::string_view input, size_t chunk = 0) {
    if (chunk == 0) chunk = input.size();
    for (size_t i = 0; i < input.size(); i += chunk)
      protocol_->dataReceived(input.substr(i, chunk));
    return transport_.written();
  }
  bool closed() const { return transport_.loseConnectionCalls() > 0; }

  int calls_ = 0;
  std::shared_ptr<api::Factory> factory_;
  test::FakeReactor reactor_;
  test::FakeTransport transport_{reactor_};
  std::unique_ptr<api::Protocol> protocol_;
};

TEST_F(MetricsHttpTest, GetAllAtOnce) {
  EXPECT_EQ(feed(kGet), ok200());
  EXPECT_FALSE(closed());
  EXPECT_EQ(calls_, 1);
  // Head and body in one writeSequence: FakeTransport records its parts.
  EXPECT_EQ(transport_.writes().size(), 2u);
}

TEST_F(MetricsHttpTest, GetOneByteAtATime) {
  EXPECT_EQ(feed(kGet, 1), ok200());
  EXPECT_FALSE(closed());
  // A second request trickling in on the same connection.
  transport_.clearWritten();
  EXPECT_EQ(feed(kGet, 1), ok200());
  EXPECT_EQ(calls_, 2);
}

TEST_F(MetricsHttpTest, EveryChunkSizeGivesTheSameAnswer) {
  std::string two = std::string(kGet) + "GET /metrics?name[]=up HTTP/1.1\r\nhost: y\r\n\r\n";
  for (size_t chunk = 1; chunk <= two.size(); ++chunk) {
    test::FakeTransport t(reactor_);
    auto p = factory_->build(Address::loopbackIPv4(40000));
    t.connect(p.get());
    for (size_t i = 0; i < two.size(); i += chunk)
      p->dataReceived(std::string_view(two).substr(i, chunk));
    EXPECT_EQ(t.written(), ok200() + ok200()) << "chunk " << chunk;
    EXPECT_EQ(t.loseConnectionCalls(), 0);
  }
}

TEST_F(MetricsHttpTest, KeepAliveWithTwoPipelinedRequests) {
  std::string two = std::string(kGet) + std::string(kGet);
  EXPECT_EQ(feed(two), ok200() + ok200());
  EXPECT_FALSE(closed());
  EXPECT_EQ(calls_, 2);
  // Pipelined with the last one asking to close: answered, then closed, and later input ignored.
  transport_.clearWritten();
  EXPECT_EQ(feed(std::string(kGet) +
                 "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n" +
                 std::string(kGet)),
            ok200() + ok200(/*close=*/true));
  EXPECT_TRUE(closed());
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
}

TEST_F(MetricsHttpTest, Http10Closes) {
  EXPECT_EQ(feed("GET /metrics HTTP/1.0\r\n\r\n"), ok200(/*close=*/true));
  EXPECT_TRUE(closed());
}

TEST_F(MetricsHttpTest, Http10KeepAliveIsNotOffered) {
  EXPECT_EQ(feed("GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), ok200(true));
  EXPECT_TRUE(closed());
}

TEST_F(MetricsHttpTest, HeadSendsHeadersOnly) {
  EXPECT_EQ(feed("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), ok200(false, /*head=*/true));
  EXPECT_FALSE(closed());
}

TEST_F(MetricsHttpTest, QueryAndAbsoluteFormReachMetrics) {
  EXPECT_EQ(feed("GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET http://example.com:9100/metrics HTTP/1.1\r\nHost: example.com\r\n\r\n"),
            ok200() + ok200());
}

TEST_F(MetricsHttpTest, OtherPathsAre404AndKeepTheConnection) {
  EXPECT_EQ(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n" +
                 std::string(kGet)),
            notFound() + notFound() + notFound() + notFound() + ok200());
  EXPECT_FALSE(closed());
  EXPECT_EQ(calls_, 1);
}

TEST_F(MetricsHttpTest, OtherMethodsAre405AndBodiesAreSkipped) {
  std::string e405 =
      error(405, "Method Not Allowed", "method not allowed\n", false, "Allow: GET, HEAD\r\n");
  // The POST body looks like a request: it must be skipped, not answered.
  std::string post =
      "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(feed(post + "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(kGet)),
            e405 + e405 + ok200());
  EXPECT_FALSE(closed());
  transport_.clearWritten();
  EXPECT_EQ(feed(post, 1), e405);
  EXPECT_EQ(feed(kGet, 1), e405 + ok200());
}

TEST_F(MetricsHttpTest, MalformedIsRejectedWithTheCauseAndClosed) {
  struct Case {
    std::string request;
    int status;
    std::string_view reason;
  };
  const std::vector<Case> bad = {
      {"GET /metrics\r\n\r\n", 400, "request line without an HTTP version"},
      {"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n", 505,
       "HTTP version not supported: this server speaks HTTP/1.x"},
      {"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400, "empty request target"},
      {"G(T /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400, "the method is not a token"},
      {"GET /metrics HTTP/1.1\r\n\r\n", 400, "an HTTP/1.1 request without Host"},
      {"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host field"},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, "a field line without a colon"},
      {"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400,
       "whitespace between a field name and colon"},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400,
       "a field line starts with whitespace (obs-fold)"},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400,
       "a control character in a field value"},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400,
       "an invalid Content-Length"},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       400, "different Content-Length values"},
      {"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
       "Transfer-Encoding: chunked\r\n\r\n",
       400, "Content-Length together with Transfer-Encoding"},
      {"GET /metrics HTTP/1.1\r\nHost: x\rX\r\n\r\n", 400, "a CR not followed by LF"},
      {"\x16\x03\x01\x02\x00", 400, "the method is not a token"},
  };
  for (const Case& c : bad) {
    for (size_t chunk : {size_t{0}, size_t{1}}) {
      test::FakeTransport t(reactor_);
      auto p = factory_->build(Address::loopbackIPv4(40000));
      t.connect(p.get());
      std::string input = c.request + std::string(kGet);  // ignored once closing
      size_t step = chunk == 0 ? input.size() : chunk;
      for (size_t i = 0; i < input.size(); i += step)
        p->dataReceived(std::string_view(input).substr(i, step));
      EXPECT_EQ(t.written(), rejected(c.status, c.reason)) << c.request;
      EXPECT_EQ(t.loseConnectionCalls(), 1) << c.request;
    }
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(MetricsHttpTest, BareLfLineEndsAreAccepted) {
  // RFC 9112 §2.2: a bare LF ends a line; the CRLFs after the first request are empty lines.
  EXPECT_EQ(feed("GET /metrics HTTP/1.1\nHost: x\n\n\r\n\r\n" + std::string(kGet), 1),
            ok200() + ok200());
  EXPECT_EQ(feed("GET /metrics HTTP/1.0\n\n"), ok200() + ok200() + ok200(/*close=*/true));
  EXPECT_TRUE(closed());
}

TEST_F(MetricsHttpTest, TransferEncodingIs501AndClose) {
  EXPECT_EQ(feed("POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            rejected(501, "chunked request bodies are not supported"));
  EXPECT_TRUE(closed());
}

TEST_F(MetricsHttpTest, HeadOver8KiBIs431) {
  // Exactly 8 KiB with the final CRLFCRLF is fine.
  std::string prefix = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  std::string exact = prefix +
                      std::string(MetricsHttpProtocol::kMaxHeadBytes - prefix.size() - 4, 'a') +
                      "\r\n\r\n";
  ASSERT_EQ(exact.size(), MetricsHttpProtocol::kMaxHeadBytes);
  EXPECT_EQ(feed(exact, 7), ok200());
  EXPECT_FALSE(closed());

  // One byte more: 431.
  transport_.clearWritten();
  std::string over = prefix +
                     std::string(MetricsHttpProtocol::kMaxHeadBytes - prefix.size() - 3, 'a') +
                     "\r\n\r\n";
  EXPECT_EQ(feed(over), rejected(431, "request header fields too large"));
  EXPECT_TRUE(closed());
}

TEST_F(MetricsHttpTest, RequestLineOver8KiBIs414) {
  EXPECT_EQ(feed("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 1000),
            rejected(414, "request line too long"));
  EXPECT_TRUE(closed());
}

TEST_F(MetricsHttpTest, EndlessHeadIsRejectedWithoutWaitingForItsEnd) {
  std::string endless = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(9000, 'a');
  EXPECT_EQ(feed(endless, 512), rejected(431, "request header fields too large"));
  EXPECT_TRUE(closed());
  // Nothing more is parsed or answered.
  EXPECT_EQ(feed("\r\n\r\n" + std::string(kGet)), rejected(431, "request header fields too large"));
}

TEST_F(MetricsHttpTest, LeadingEmptyLinesAreIgnored) {
  EXPECT_EQ(feed("\r\n\r\n" + std::string(kGet), 1), ok200());
}

TEST(MetricsHttpRegistry, ServesARegistry) {
  Registry r(2);
  r.counter("scrapes", "Scrapes.").inc(1);
  auto factory = metricsHttpFactory([&r] { return r.render(); });
  test::FakeReactor reactor;
  test::FakeTransport t(reactor);
  auto p = factory->build(Address::loopbackIPv4(40000));
  t.connect(p.get());
  p->dataReceived(kGet);
  std::string body = r.render();
  EXPECT_EQ(t.written(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_NE(body.find("scrapes_total{shard=\"1\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace whorl::metrics
