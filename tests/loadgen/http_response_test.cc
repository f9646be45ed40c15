// HttpResponseParser: framing (Content-Length, chunked, close-delimited, bodiless), keep-alive
// rules, interim responses, input split at every byte, and malformed responses.
#include "tools/loadgen/http_response.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace whorl::loadgen {
namespace {

using R = HttpResponseParser::Result;

struct Seen {
  int status;
  bool keepAlive;
  uint64_t body;
};

// Feeds `input` in pieces of `step` bytes (0: all at once); collects complete responses.
// Returns false on a parse error.
bool parseAll(HttpResponseParser& p, const std::string& input, size_t step,
              std::vector<Seen>* out) {
  size_t pos = 0;
  while (pos < input.size()) {
    size_t n = step == 0 ? input.size() - pos : std::min(step, input.size() - pos);
    std::string_view chunk(input.data() + pos, n);
    pos += n;
    while (!chunk.empty()) {
      size_t used = 0;
      R r = p.feed(chunk, &used);
      EXPECT_LE(used, chunk.size());
      chunk.remove_prefix(used);
      if (r == R::kError) return false;
      if (r == R::kNeedMore) {
        EXPECT_TRUE(chunk.empty()) << "kNeedMore must consume all input";
        break;
      }
      out->push_back({p.status(), p.keepAlive(), p.bodyBytes()});
    }
  }
  return true;
}

const std::string kHello =
    "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\nhello world\n";

TEST(HttpResponseParser, ContentLengthResponse) {
  HttpResponseParser p;
  std::vector<Seen> seen;
  ASSERT_TRUE(parseAll(p, kHello, 0, &seen));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].status, 200);
  EXPECT_TRUE(seen[0].keepAlive);
  EXPECT_EQ(seen[0].body, 12u);
  EXPECT_TRUE(p.idle());
}

TEST(HttpResponseParser, PipelinedResponsesSplitAtEveryByte) {
  const std::string chunked =
      "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: yes\r\n\r\n";
  const std::string interim =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
  const std::string noBody = "HTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n";
  const std::string input = kHello + chunked + interim + kHello + noBody + "\r\n" + kHello;
  for (size_t step = 0; step <= 7; ++step) {
    HttpResponseParser p;
    std::vector<Seen> seen;
    ASSERT_TRUE(parseAll(p, input, step, &seen)) << "step " << step << ": " << p.error();
    ASSERT_EQ(seen.size(), 5u) << "step " << step;
    EXPECT_EQ(seen[0].status, 200);
    EXPECT_EQ(seen[1].status, 404);
    EXPECT_EQ(seen[1].body, 31u);
    EXPECT_TRUE(seen[1].keepAlive);
    EXPECT_EQ(seen[2].status, 200);  // the interim responses are skipped
    EXPECT_EQ(seen[2].body, 12u);
    EXPECT_EQ(seen[3].status, 204);
    EXPECT_EQ(seen[3].body, 0u);
    EXPECT_EQ(seen[4].status, 200);
  }
}

TEST(HttpResponseParser, KeepAliveRules) {
  struct Case {
    std::string head;
    bool keepAlive;
  };
  for (const Case& c : std::vector<Case>{
           {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
           {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
           {"HTTP/1.1 200 OK\r\nconnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n", false},
           {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
           {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
       }) {
    HttpResponseParser p;
    std::vector<Seen> seen;
    ASSERT_TRUE(parseAll(p, c.head, 0, &seen)) << c.head;
    ASSERT_EQ(seen.size(), 1u) << c.head;
    EXPECT_EQ(seen[0].keepAlive, c.keepAlive) << c.head;
  }
}

TEST(HttpResponseParser, BodyDelimitedByClose) {
  HttpResponseParser p;
  std::vector<Seen> seen;
  ASSERT_TRUE(parseAll(p, "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nsome body bytes", 3, &seen));
  EXPECT_TRUE(seen.empty());
  EXPECT_FALSE(p.idle());
  EXPECT_EQ(p.finish(), R::kComplete);
  EXPECT_EQ(p.status(), 200);
  EXPECT_FALSE(p.keepAlive());
  EXPECT_EQ(p.bodyBytes(), 15u);
  EXPECT_TRUE(p.idle());
  EXPECT_EQ(p.finish(), R::kNeedMore);  // nothing in progress
}

TEST(HttpResponseParser, CloseInTheMiddleIsAnError) {
  HttpResponseParser p;
  std::vector<Seen> seen;
  ASSERT_TRUE(parseAll(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, &seen));
  EXPECT_EQ(p.finish(), R::kError);
  p.reset();
  EXPECT_TRUE(p.idle());
  ASSERT_TRUE(parseAll(p, kHello, 0, &seen));
  EXPECT_EQ(seen.size(), 1u);
}

TEST(HttpResponseParser, MalformedResponses) {
  for (const std::string& bad : std::vector<std::string>{
           "HTTP/2 200 OK\r\n\r\n",
           "HTTP/1.1 2000 OK\r\n\r\n",
           "HTTP/1.1 20 OK\r\n\r\n",
           "SSH-2.0-OpenSSH\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
           "HTTP/1.1 101 Switching Protocols\r\n\r\n",
       }) {
    HttpResponseParser p;
    std::vector<Seen> seen;
    EXPECT_FALSE(parseAll(p, bad, 0, &seen)) << bad;
    EXPECT_STRNE(p.error(), "") << bad;
    // Stays failed.
    size_t used = 0;
    EXPECT_EQ(p.feed(kHello, &used), R::kError);
  }
}

TEST(HttpResponseParser, OverlongLineIsAnError) {
  HttpResponseParser p;
  std::string header =
      "HTTP/1.1 200 OK\r\nX-Big: " + std::string(HttpResponseParser::kMaxLine + 10, 'a');
  std::vector<Seen> seen;
  EXPECT_FALSE(parseAll(p, header, 1000, &seen));
}

}  // namespace
}  // namespace whorl::loadgen
