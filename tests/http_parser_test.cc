// Tests for framework/http: the request parser's RFC 9112 rules, each input fed whole, one byte at
// a time and in random chunks with the same transcript; limits (414, 431) detected before the line
// ends; pipelining and bodies; in-place parsing; the response heads; RequestReceiver over an
// in-memory transport, also under TimeoutMixin.
#include "framework/http/request_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "framework/api/timeout_mixin.h"
#include "framework/http/request_receiver.h"
#include "framework/http/response.h"
#include "framework/http/syntax.h"
#include "tests/fake_transport.h"

namespace whorl::http {
namespace {

using Event = RequestParser::Event;

// What the parser made of an input, as text: one line per request, its body (the kBody pieces
// joined, so that chunking does not show), and the error with the bytes consumed up to it.
std::string describe(const Request& r) {
  std::string s = "request " + std::string(r.method) + " " + std::string(r.target) + " 1." +
                  std::to_string(r.minorVersion);
  if (r.connectionClose) s += " close";
  if (r.connectionKeepAlive) s += " keep-alive";
  if (r.contentLength) s += " length=" + std::to_string(*r.contentLength);
  return s + "\n";
}

std::string transcript(std::string_view input, const std::vector<size_t>& chunks,
                       RequestLimits limits = {}) {
  RequestParser parser(limits);
  std::string out, body;
  size_t consumed = 0;
  auto flushBody = [&] {
    if (!body.empty()) out += "body " + body + "\n";
    body.clear();
  };
  size_t pos = 0;
  for (size_t i = 0; pos < input.size(); ++i) {
    size_t n = std::min(chunks[i % chunks.size()], input.size() - pos);
    std::string chunk(input.substr(pos, n));  // its own buffer: views must not outlive feed()
    pos += n;
    std::string_view data = chunk;
    while (!data.empty()) {
      size_t used = 0;
      Event e = parser.feed(data, &used);
      EXPECT_LE(used, data.size());
      data.remove_prefix(used);
      consumed += used;
      if (e == Event::kRequest) {
        flushBody();
        out += describe(parser.request());
      } else if (e == Event::kBody) {
        body += parser.body();
      } else if (e == Event::kError) {
        flushBody();
        out += "error " + std::to_string(parser.error().status) + " " +
               std::string(parser.error().reason) + " after " + std::to_string(consumed) + "\n";
        // Failed stays failed, consuming nothing.
        EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &used), Event::kError);
        EXPECT_EQ(used, 0u);
        return out;
      } else {
        EXPECT_TRUE(data.empty()) << "kNeedMore with input left";
        break;
      }
    }
  }
  flushBody();
  return out;
}

// The transcript of `input` fed whole; fails the test if one byte at a time or random chunks give
// another.
std::string parse(std::string_view input, RequestLimits limits = {}) {
  std::string whole = transcript(input, {input.size() + 1}, limits);
  EXPECT_EQ(transcript(input, {1}, limits), whole) << "one byte at a time: " << input;
  std::mt19937 rng(static_cast<uint32_t>(input.size()));
  for (int round = 0; round < 8; ++round) {
    std::vector<size_t> chunks;
    for (int i = 0; i < 16; ++i) chunks.push_back(1 + rng() % (input.size() / 3 + 2));
    EXPECT_EQ(transcript(input, chunks, limits), whole) << "random chunks: " << input;
  }
  return whole;
}

constexpr std::string_view kGet = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

// --- line ends and the request line ---------------------------------------------------------

TEST(RequestParser, SimpleRequest) {
  EXPECT_EQ(parse("GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"),
            "request GET /a?b=c 1.1\n");
}

TEST(RequestParser, BareLfEndsLines) {
  EXPECT_EQ(parse("GET / HTTP/1.0\n\n"), "request GET / 1.0\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\nHost: x\n\n"), "request GET / 1.1\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: x\nConnection: close\r\n\n"),
            "request GET / 1.1 close\n");
}

TEST(RequestParser, BareCrIsAnError) {
  EXPECT_EQ(parse("GET / HTTP/1.1\rHost: x\r\n\r\n"),
            "error 400 a CR not followed by LF after 16\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n"),
            "error 400 a CR not followed by LF after 25\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\n\rX"),
            "error 400 a CR not followed by LF after 27\n");
  EXPECT_EQ(parse("\rGET / HTTP/1.1\r\n"), "error 400 a CR not followed by LF after 2\n");
}

TEST(RequestParser, EmptyLinesBeforeARequestAreSkipped) {
  EXPECT_EQ(parse("\r\n\n\r\n" + std::string(kGet) + "\r\n" + std::string(kGet)),
            "request GET / 1.1\nrequest GET / 1.1\n");
}

TEST(RequestParser, MalformedRequestLines) {
  struct Case {
    std::string input, error;
  };
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", "400 request line without a target and version after 8"},
      {"GET /\r\n\r\n", "400 request line without an HTTP version after 6"},
      {" GET / HTTP/1.1\r\n", "400 request line starts with a space after 1"},
      {"GET  / HTTP/1.1\r\n", "400 empty request target after 5"},
      {"G(T / HTTP/1.1\r\n", "400 the method is not a token after 2"},
      {"GET /a\x80 HTTP/1.1\r\n", "400 invalid character in the request target after 7"},
      {"GET /a\tb HTTP/1.1\r\n", "400 invalid character in the request target after 7"},
      {"GET / HTTP/1.1 extra\r\n", "400 malformed HTTP version after 15"},
      {"GET / http/1.1\r\n", "400 malformed HTTP version after 7"},
      {"GET / HTTP/1\r\n", "400 malformed HTTP version after 13"},
      {"GET / HTTP/1.10\r\n", "400 malformed HTTP version after 15"},
      {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", "505 HTTP version not supported: this server speaks "
                                            "HTTP/1.x after 16"},
      {"GET / HTTP/0.9\n", "505 HTTP version not supported: this server speaks HTTP/1.x after 15"},
  };
  for (const Case& c : cases) EXPECT_EQ(parse(c.input), "error " + c.error + "\n") << c.input;
}

TEST(RequestParser, LaterMinorVersionsAreServedAsHttp11) {
  EXPECT_EQ(parse("GET / HTTP/1.2\r\nHost: x\r\n\r\n"), "request GET / 1.2\n");
  RequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.feed("GET / HTTP/1.9\r\n\r\n", &used), Event::kError);  // 1.x >= 1.1 needs Host
  EXPECT_EQ(p.error().reason, "an HTTP/1.1 request without Host");
}

TEST(RequestParser, GarbageIsRejectedAtItsFirstByte) {
  // A TLS ClientHello sent to a plaintext port, and NUL bytes: no waiting for a line end.
  EXPECT_EQ(parse(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)),
            "error 400 the method is not a token after 1\n");
  EXPECT_EQ(parse(std::string(100, '\0')), "error 400 the method is not a token after 1\n");
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string junk;
    for (int j = 0; j < 64; ++j) junk += static_cast<char>(rng());
    std::string t = parse(junk);
    EXPECT_EQ(t.rfind("error 4", 0), 0u) << t;
  }
}

// --- header fields ---------------------------------------------------------------------------

TEST(RequestParser, MalformedFieldLines) {
  struct Case {
    std::string fields, error;
  };
  const std::vector<Case> cases = {
      {"Host: x\r\n folded\r\n", "a field line starts with whitespace (obs-fold)"},
      {"Host: x\r\n\tfolded\r\n", "a field line starts with whitespace (obs-fold)"},
      {" Host: x\r\n", "a field line starts with whitespace (obs-fold)"},
      {"Host : x\r\n", "whitespace between a field name and colon"},
      {"Host\t: x\r\n", "whitespace between a field name and colon"},
      {"Host x\r\n", "whitespace between a field name and colon"},
      {"NoColon\r\n", "a field line without a colon"},
      {": empty name\r\n", "a field name is not a token"},
      {"Ho(st: x\r\n", "a field name is not a token"},
      {"Host: x\r\nX: a\x01" "b\r\n", "a control character in a field value"},
      {"Host: x\r\nX: a\x7f\r\n", "a control character in a field value"},
      {std::string("Host: x\r\nX: a\0b\r\n", 18), "a control character in a field value"},
  };
  for (const Case& c : cases) {
    std::string t = parse("GET / HTTP/1.1\r\n" + c.fields + "\r\n");
    EXPECT_EQ(t.substr(0, t.find(" after")), "error 400 " + c.error) << c.fields;
  }
}

TEST(RequestParser, FieldValuesMayHoldTabsAndObsText) {
  RequestParser p;
  size_t used = 0;
  std::string in = "GET / HTTP/1.1\r\nHost: x\r\nX-Name: \t caf\xc3\xa9\tau lait \t\r\n\r\n";
  ASSERT_EQ(p.feed(in, &used), Event::kRequest);
  EXPECT_EQ(p.request().field("x-name"), "caf\xc3\xa9\tau lait");
  EXPECT_EQ(p.request().field("X-NAME"), "caf\xc3\xa9\tau lait");
  EXPECT_EQ(p.request().field("host"), "x");
  EXPECT_FALSE(p.request().field("missing").has_value());
}

TEST(RequestParser, HostRules) {
  EXPECT_EQ(parse("GET / HTTP/1.1\r\n\r\n"),
            "error 400 an HTTP/1.1 request without Host after 18\n");
  EXPECT_EQ(parse("GET / HTTP/1.0\r\n\r\n"), "request GET / 1.0\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
            "error 400 more than one Host field after 34\n");
  EXPECT_EQ(parse("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n"),
            "error 400 more than one Host field after 34\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"),
            "error 400 an invalid Host value after 27\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
            "error 400 an invalid Host value after 27\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n"), "request GET / 1.1\n");  // RFC 9112 §3.2
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"), "request GET / 1.1\n");
}

TEST(RequestParser, ConnectionOptions) {
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n"),
            "request GET / 1.1 close keep-alive\n");
  EXPECT_EQ(parse("GET / HTTP/1.0\r\nconnection: ,Keep-Alive,,Upgrade\r\n\r\n"),
            "request GET / 1.0 keep-alive\n");
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n"),
            "request GET / 1.1\n");
}

TEST(RequestParser, KeepAlivePerRfc9112) {
  auto keepAlive = [](std::string_view in) {
    RequestParser p;
    size_t used = 0;
    EXPECT_EQ(p.feed(in, &used), Event::kRequest) << in;
    return p.request().keepAlive();
  };
  EXPECT_TRUE(keepAlive(kGet));
  EXPECT_FALSE(keepAlive("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  EXPECT_FALSE(keepAlive("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(keepAlive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_FALSE(keepAlive("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
}

// --- message framing ----------------------------------------------------------------------------

TEST(RequestParser, ContentLengthBodiesAndPipelining) {
  // The POST body looks like a request: it is body, not a request.
  EXPECT_EQ(parse("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n"
                  "GET /not HTTP/1.1\r\nHost: x\r\n\r\n\r\n"
                  "HEAD /h HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
                  "PUT /q HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\nabcdefg" +
                  std::string(kGet)),
            "request POST /p 1.1 length=30\n"
            "body GET /not HTTP/1.1\r\nHost: x\r\n\r\n\n"
            "request HEAD /h 1.1 length=0\n"
            "request PUT /q 1.1 length=7\n"
            "body abcdefg\n"
            "request GET / 1.1\n");
}

TEST(RequestParser, ContentLengthRules) {
  // Identical repeated values are that value (RFC 9110 §8.6); anything else is 400.
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n"
                  "abc"),
            "request POST / 1.1 length=3\nbody abc\n");
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3,3\r\n\r\nabc"),
            "request POST / 1.1 length=3\nbody abc\n");
  const std::vector<std::string> bad = {"1x", "-1", "+1", "", "1 2", "0x10", "1,", ",1", "1, ,1",
                                        "1234567890123456789"};
  for (const std::string& v : bad) {
    std::string t = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + v + "\r\n\r\n");
    EXPECT_EQ(t.substr(0, t.find(" after")), "error 400 an invalid Content-Length") << v;
  }
  for (const std::string& fields :
       {std::string("Content-Length: 1\r\nContent-Length: 2\r\n"),
        std::string("Content-Length: 1, 2\r\n")}) {
    std::string t = parse("POST / HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n");
    EXPECT_EQ(t.substr(0, t.find(" after")), "error 400 different Content-Length values") << fields;
  }
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 123456789012345678\r\n\r\nab"),
            "request POST / 1.1 length=123456789012345678\nbody ab\n");
}

TEST(RequestParser, TransferEncodingRules) {
  auto error = [](std::string fields, std::string version = "1.1") {
    std::string t = parse("POST / HTTP/" + version + "\r\nHost: x\r\n" + fields + "\r\n");
    return t.substr(0, t.find(" after"));
  };
  EXPECT_EQ(error("Transfer-Encoding: chunked\r\n"),
            "error 501 chunked request bodies are not supported");
  EXPECT_EQ(error("Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n"),
            "error 501 chunked request bodies are not supported");
  EXPECT_EQ(error("Transfer-Encoding: gzip, chunked\r\n"),
            "error 501 chunked request bodies are not supported");
  EXPECT_EQ(error("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
            "error 400 Content-Length together with Transfer-Encoding");
  EXPECT_EQ(error("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
            "error 400 Content-Length together with Transfer-Encoding");
  EXPECT_EQ(error("Transfer-Encoding: chunked\r\n", "1.0"),
            "error 400 Transfer-Encoding in an HTTP/1.0 request");
  EXPECT_EQ(error("Transfer-Encoding: chunked, gzip\r\n"),
            "error 400 Transfer-Encoding whose final coding is not chunked");
  EXPECT_EQ(error("Transfer-Encoding: gzip\r\n"),
            "error 400 Transfer-Encoding whose final coding is not chunked");
  EXPECT_EQ(error("Transfer-Encoding: \r\n"), "error 400 an empty Transfer-Encoding");
  EXPECT_EQ(error("Transfer-Encoding: , ,\r\n"), "error 400 an empty Transfer-Encoding");
}

// --- limits ------------------------------------------------------------------------------------

TEST(RequestParser, RequestLineLimitIs414) {
  RequestLimits limits{.maxRequestLine = 64, .maxHeadBytes = 256};
  std::string prefix = "GET /";
  std::string suffix = " HTTP/1.1";
  std::string exact = prefix + std::string(64 - prefix.size() - suffix.size(), 'a') + suffix;
  ASSERT_EQ(exact.size(), 64u);
  EXPECT_EQ(parse(exact + "\r\nHost: x\r\n\r\n", limits).rfind("request GET", 0), 0u);
  std::string over = prefix + std::string(64 - prefix.size() - suffix.size() + 1, 'a') + suffix;
  EXPECT_EQ(parse(over + "\r\nHost: x\r\n\r\n", limits),
            "error 414 request line too long after 65\n");
  // Detected when the 65th byte arrives, not when the line ends (which it never does here).
  EXPECT_EQ(parse("GET /" + std::string(100, 'a'), limits),
            "error 414 request line too long after 65\n");
  EXPECT_EQ(parse(std::string(100, 'G'), limits), "error 414 request line too long after 65\n");
}

TEST(RequestParser, HeadLimitIs431) {
  RequestLimits limits{.maxRequestLine = 64, .maxHeadBytes = 128};
  std::string start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  std::string exact = start + std::string(128 - start.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), 128u);
  EXPECT_EQ(parse(exact + std::string(kGet), limits), "request GET / 1.1\nrequest GET / 1.1\n");
  std::string over = start + std::string(128 - start.size() - 3, 'a') + "\r\n\r\n";
  EXPECT_EQ(parse(over, limits), "error 431 request header fields too large after 129\n");
  EXPECT_EQ(parse(start + std::string(1000, 'a'), limits),
            "error 431 request header fields too large after 129\n");
  // Many small fields count together; bare LF line ends count as one byte.
  std::string many = "GET / HTTP/1.1\nHost: x\n";
  while (many.size() < 127) many += "A: b\n";
  EXPECT_EQ(parse(many + "\n", limits).rfind("error 431", 0), 0u);
}

TEST(RequestParser, DefaultLimits) {
  RequestParser p;
  EXPECT_EQ(p.limits().maxRequestLine, 8u * 1024);
  EXPECT_EQ(p.limits().maxHeadBytes, 16u * 1024);
  RequestParser capped({.maxRequestLine = 100, .maxHeadBytes = 50});
  EXPECT_EQ(capped.limits().maxRequestLine, 50u);
}

// --- the API ---------------------------------------------------------------------------------

TEST(RequestParser, WholeHeadsAreParsedInPlace) {
  std::string in = std::string(kGet) + "GET /second HTTP/1.1\r\nHost: y\r\n\r\n";
  RequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.feed(in, &used), Event::kRequest);
  EXPECT_EQ(used, kGet.size());
  EXPECT_EQ(p.request().method.data(), in.data());  // a view into the input, not a copy
  EXPECT_EQ(p.request().head, kGet);
  std::string_view rest = std::string_view(in).substr(used);
  ASSERT_EQ(p.feed(rest, &used), Event::kRequest);
  EXPECT_EQ(p.request().target, "/second");
  EXPECT_EQ(p.request().target.data(), rest.data() + 4);
  EXPECT_EQ(used, rest.size());
  EXPECT_EQ(p.feed("", &used), Event::kNeedMore);
}

TEST(RequestParser, SplitHeadsAreCopiedAndStayValidUntilTheNextFeed) {
  RequestParser p;
  size_t used = 0;
  std::string a = "GET /split HTTP/1.1\r\nHo";
  std::string b = "st: z\r\n\r\nPOST";
  EXPECT_EQ(p.feed(a, &used), Event::kNeedMore);
  EXPECT_EQ(used, a.size());
  a.assign(a.size(), '#');  // the parser kept its own copy
  ASSERT_EQ(p.feed(b, &used), Event::kRequest);
  EXPECT_EQ(used, b.size() - 4);
  EXPECT_EQ(p.request().head, "GET /split HTTP/1.1\r\nHost: z\r\n\r\n");
  EXPECT_EQ(p.request().target, "/split");
  EXPECT_EQ(p.request().field("host"), "z");
}

TEST(RequestParser, ResetForgetsAFailure) {
  RequestParser p;
  size_t used = 0;
  EXPECT_EQ(p.feed("\x01", &used), Event::kError);
  p.reset();
  EXPECT_EQ(p.feed(kGet, &used), Event::kRequest);
}

TEST(RequestParser, BodyEventsAndRemaining) {
  RequestParser p;
  size_t used = 0;
  ASSERT_EQ(p.feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", &used),
            Event::kRequest);
  EXPECT_EQ(p.bodyRemaining(), 5u);
  EXPECT_EQ(p.feed("", &used), Event::kNeedMore);
  ASSERT_EQ(p.feed("abc", &used), Event::kBody);
  EXPECT_EQ(p.body(), "abc");
  EXPECT_EQ(p.bodyRemaining(), 2u);
  ASSERT_EQ(p.feed("deGET", &used), Event::kBody);
  EXPECT_EQ(p.body(), "de");
  EXPECT_EQ(used, 2u);
  EXPECT_EQ(p.bodyRemaining(), 0u);
}

TEST(Request, Path) {
  auto path = [](std::string_view target) {
    Request r;
    r.target = target;
    return std::string(r.path());
  };
  EXPECT_EQ(path("/metrics"), "/metrics");
  EXPECT_EQ(path("/metrics?x=1"), "/metrics");
  EXPECT_EQ(path("http://h:9100/metrics?x"), "/metrics");
  EXPECT_EQ(path("HTTPS://h"), "/");
  EXPECT_EQ(path("http://h?q"), "/");
  EXPECT_EQ(path("*"), "*");
}

TEST(Syntax, ListElements) {
  std::vector<std::string> got;
  EXPECT_TRUE(forEachListElement(" a ,, b\t,c,", [&](std::string_view e) {
    got.emplace_back(e);
    return true;
  }));
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(forEachListElement("a,b", [](std::string_view) { return false; }));
}

// --- responses -------------------------------------------------------------------------------

TEST(Response, Heads) {
  ResponseHead head;
  head.contentLength = 12;
  EXPECT_EQ(formatResponseHead(head),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n"
            "\r\n");
  head.status = 405;
  head.contentType = "text/plain";
  head.fields = "Allow: GET, HEAD\r\n";
  head.connection = ConnectionField::kKeepAlive;
  EXPECT_EQ(formatResponseHead(head),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
            "Allow: GET, HEAD\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(errorResponse({431, "request header fields too large"}),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; "
            "charset=utf-8\r\nContent-Length: 65\r\nConnection: close\r\n\r\n"
            "request header fields too large: request header fields too large\n");
  EXPECT_EQ(reasonPhrase(414), "URI Too Long");
  EXPECT_EQ(reasonPhrase(599), "Unknown");
}

TEST(Response, ConnectionFieldFollowsTheRequest) {
  Request r;
  EXPECT_EQ(connectionField(r), ConnectionField::kNone);
  r.connectionClose = true;
  EXPECT_EQ(connectionField(r), ConnectionField::kClose);
  r = Request{};
  r.minorVersion = 0;
  EXPECT_EQ(connectionField(r), ConnectionField::kClose);
  r.connectionKeepAlive = true;
  EXPECT_EQ(connectionField(r), ConnectionField::kKeepAlive);
}

// --- RequestReceiver -------------------------------------------------------------------------

class Recorder : public api::TimeoutMixin<RequestReceiver> {
 public:
  Recorder() : TimeoutMixin(RequestLimits{.maxRequestLine = 64, .maxHeadBytes = 128}) {}
  void connectionMade() override { setTimeout(std::chrono::seconds(5)); }
  void requestReceived(const Request& request) override {
    resetTimeout();
    log += describe(request);
    transport()->write("answer " + std::string(request.target) + "\n");
    if (!request.keepAlive()) transport()->loseConnection();
  }
  void bodyReceived(std::string_view data) override { log += "body " + std::string(data) + "\n"; }
  std::string log;
};

class RequestReceiverTest : public ::testing::Test {
 protected:
  RequestReceiverTest() { transport_.connect(&protocol_); }
  void feed(std::string_view input, size_t chunk) {
    for (size_t i = 0; i < input.size(); i += chunk) protocol_.dataReceived(input.substr(i, chunk));
  }
  test::FakeReactor reactor_;
  test::FakeTransport transport_{reactor_};
  Recorder protocol_;
};

TEST_F(RequestReceiverTest, PipelinedRequestsAreAnsweredInOrderUntilClose) {
  feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n"
       "hiGET /3 HTTP/1.0\r\n\r\nGET /4 HTTP/1.1\r\nHost: x\r\n\r\n",
       1000);
  EXPECT_EQ(protocol_.log,
            "request GET /1 1.1\nrequest POST /2 1.1 length=2\nbody hi\nrequest GET /3 1.0\n");
  EXPECT_EQ(transport_.written(), "answer /1\nanswer /2\nanswer /3\n");
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
}

TEST_F(RequestReceiverTest, ErrorsAreAnsweredWithTheCauseAndClose) {
  feed(std::string(kGet) + "GET /x HTTP/1.1\r\nHost : x\r\n\r\n" + std::string(kGet), 1);
  EXPECT_EQ(protocol_.log, "request GET / 1.1\n");
  EXPECT_EQ(transport_.written(),
            "answer /\n" + errorResponse({400, "whitespace between a field name and colon"}));
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
}

TEST_F(RequestReceiverTest, LimitsAre414And431) {
  feed("GET /" + std::string(100, 'a'), 7);
  EXPECT_EQ(transport_.written(), errorResponse({414, "request line too long"}));
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  test::FakeTransport t(reactor_);
  Recorder p;
  t.connect(&p);
  p.dataReceived("GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(200, 'a'));
  EXPECT_EQ(t.written(), errorResponse({431, "request header fields too large"}));
  p.connectionLost(Status::ok());
}

TEST_F(RequestReceiverTest, IdleConnectionsCloseUnderTimeoutMixin) {
  reactor_.advance(std::chrono::seconds(4));
  feed(kGet, 3);  // a complete request: the 5 s start again
  reactor_.advance(std::chrono::seconds(4));
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  feed("GET / HTTP/1.1\r\n", 1);  // an unfinished head is not activity
  reactor_.advance(std::chrono::seconds(1));
  EXPECT_TRUE(protocol_.timedOut());
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  protocol_.connectionLost(Status::ok());
}

class Holder : public RequestReceiver {
 public:
  void requestReceived(const Request& request) override {
    log += std::string(request.target) + " ";
    if (request.target == "/slow") holdRequests();
  }
  std::string log;
};

TEST(RequestReceiverHold, PipelinedRequestsWaitForResumeRequests) {
  test::FakeReactor reactor;
  test::FakeTransport t(reactor);
  Holder p;
  t.connect(&p);
  p.dataReceived("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHo");
  EXPECT_EQ(p.log, "/slow ");
  EXPECT_EQ(t.pauseCalls(), 1);
  p.dataReceived("st: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /last HTTP/1.1\r\n");
  EXPECT_EQ(p.log, "/slow ");
  p.resumeRequests();
  EXPECT_EQ(p.log, "/slow /next /slow ");
  EXPECT_EQ(t.resumeCalls(), 1);
  EXPECT_EQ(t.pauseCalls(), 2);
  p.resumeRequests();
  p.dataReceived("Host: x\r\n\r\n");
  EXPECT_EQ(p.log, "/slow /next /slow /last ");
  EXPECT_EQ(t.resumeCalls(), 2);
}

TEST(RequestReceiverHold, FlowControlKeepsReadingPausedUntilBothLetGo) {
  test::FakeReactor reactor;
  test::FakeTransport t(reactor);
  Holder p;
  t.connect(&p);
  p.pauseProducing();  // too many bytes unsent
  p.dataReceived("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  p.resumeRequests();
  EXPECT_EQ(t.resumeCalls(), 0);  // still too many bytes unsent
  p.resumeProducing();
  EXPECT_EQ(t.resumeCalls(), 1);
  p.dataReceived("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  p.resumeProducing();  // the writes drained, but a request is held
  EXPECT_EQ(t.resumeCalls(), 1);
  p.resumeRequests();
  EXPECT_EQ(t.resumeCalls(), 2);
}

}  // namespace
}  // namespace whorl::http
