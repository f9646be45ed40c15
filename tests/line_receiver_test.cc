// Tests for LineReceiver over an in-memory transport: splitting, chunking, delimiters, the length
// limit, raw mode, clearLineBuffer and sendLine.
#include "framework/api/line_receiver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fake_transport.h"

namespace whorl::api {
namespace {

using Lines = std::vector<std::string>;

// Records every callback as an event ("line:...", "raw:...", "exceeded:...") and runs optional
// hooks from inside lineReceived/rawDataReceived.
class Recorder : public LineReceiver {
 public:
  void lineReceived(std::string_view line) override {
    lines.emplace_back(line);
    events.push_back("line:" + std::string(line));
    if (onLine) onLine(line);
  }
  void rawDataReceived(std::string_view data) override {
    raw += data;
    events.push_back("raw:" + std::string(data));
    if (onRaw) onRaw(data);
  }
  void lineLengthExceeded(std::string_view partialLine) override {
    exceeded.emplace_back(partialLine);
    events.push_back("exceeded:" + std::string(partialLine));
    if (closeOnExceeded) LineReceiver::lineLengthExceeded(partialLine);
  }

  Lines lines;
  std::string raw;
  Lines exceeded;
  Lines events;
  bool closeOnExceeded = true;  // true: the default behaviour (close the connection)
  std::function<void(std::string_view)> onLine;
  std::function<void(std::string_view)> onRaw;
};

class LineReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override { transport_.connect(&r_); }

  // Feeds `input` in chunks of `chunk` bytes (the last one may be shorter).
  static void feed(LineReceiver& p, std::string_view input, size_t chunk) {
    for (size_t i = 0; i < input.size(); i += chunk) p.dataReceived(input.substr(i, chunk));
  }

  test::FakeReactor reactor_;
  test::FakeTransport transport_{reactor_};
  Recorder r_;
};

struct ChunkCase {
  std::string delimiter;
  std::string input;
  Lines lines;
  std::string rest;  // left in the buffer at the end
};

TEST(LineReceiverChunking, EveryChunkSizeGivesTheSameLines) {
  const std::vector<ChunkCase> cases = {
      {"\r\n", "hello\r\nworld\r\n\r\nlast\r\npartial", {"hello", "world", "", "last"}, "partial"},
      {"\r\n", "a\rb\nc\r\n\r\r\n", {"a\rb\nc", "\r"}, ""},
      {"\n", "one\ntwo\r\n\nthree", {"one", "two\r", ""}, "three"},
      {"--", "a-b--c---d----", {"a-b", "c", "-d", ""}, ""},
      {"\r\n",
       std::string(100, 'x') + "\r\n" + std::string(3, 'y'),
       {std::string(100, 'x')},
       "yyy"},
  };
  for (const auto& c : cases) {
    for (size_t chunk = 1; chunk <= c.input.size(); ++chunk) {
      SCOPED_TRACE("delimiter '" + c.delimiter + "', input '" + c.input + "', chunk " +
                   std::to_string(chunk));
      test::FakeReactor reactor;
      test::FakeTransport transport(reactor);
      Recorder r;
      r.setDelimiter(c.delimiter);
      transport.connect(&r);
      for (size_t i = 0; i < c.input.size(); i += chunk) {
        r.dataReceived(std::string_view(c.input).substr(i, chunk));
      }
      EXPECT_EQ(r.lines, c.lines);
      EXPECT_EQ(r.clearLineBuffer(), c.rest);
      EXPECT_EQ(transport.loseConnectionCalls(), 0);
    }
  }
}

TEST_F(LineReceiverTest, DefaultDelimiterIsCrLf) {
  EXPECT_EQ(r_.delimiter(), "\r\n");
  r_.dataReceived("a\nb\r\nc\rd\r\n");
  EXPECT_EQ(r_.lines, (Lines{"a\nb", "c\rd"}));
}

TEST_F(LineReceiverTest, CustomDelimiterNewline) {
  r_.setDelimiter("\n");
  r_.dataReceived("a\r\nb\nc");
  EXPECT_EQ(r_.lines, (Lines{"a\r", "b"}));
  r_.dataReceived("\n");
  EXPECT_EQ(r_.lines, (Lines{"a\r", "b", "c"}));
}

TEST_F(LineReceiverTest, DelimiterSplitAcrossChunks) {
  r_.dataReceived("abc\r");
  EXPECT_TRUE(r_.lines.empty());
  r_.dataReceived("\ndef\r");
  EXPECT_EQ(r_.lines, Lines{"abc"});
  r_.dataReceived("\n");
  EXPECT_EQ(r_.lines, (Lines{"abc", "def"}));

  r_.setDelimiter("<END>");
  r_.dataReceived("x<E");
  r_.dataReceived("N");
  r_.dataReceived("D>y<END");
  EXPECT_EQ(r_.lines, (Lines{"abc", "def", "x"}));
  r_.dataReceived(">");
  EXPECT_EQ(r_.lines, (Lines{"abc", "def", "x", "y"}));
}

TEST_F(LineReceiverTest, EmptyLines) {
  r_.dataReceived("\r\n\r\nx\r\n\r\n");
  EXPECT_EQ(r_.lines, (Lines{"", "", "x", ""}));
  r_.dataReceived("\r");
  r_.dataReceived("\n");
  EXPECT_EQ(r_.lines, (Lines{"", "", "x", "", ""}));
}

TEST_F(LineReceiverTest, LineOfExactlyMaxLengthIsDelivered) {
  r_.setMaxLength(5);
  r_.dataReceived("abcde\r\nfghij");
  EXPECT_EQ(r_.lines, Lines{"abcde"});
  EXPECT_TRUE(r_.exceeded.empty());
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  r_.dataReceived("\r\n");
  EXPECT_EQ(r_.lines, (Lines{"abcde", "fghij"}));
  EXPECT_FALSE(transport_.disconnecting());
}

TEST_F(LineReceiverTest, OverlongCompletedLineClosesAndStopsDelivery) {
  r_.setMaxLength(5);
  r_.dataReceived("ok\r\nabcdefg\r\nafter\r\n");
  EXPECT_EQ(r_.lines, Lines{"ok"});
  EXPECT_EQ(r_.exceeded, Lines{"abcdefg"});
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_TRUE(transport_.disconnecting());
  r_.dataReceived("more\r\n");
  EXPECT_EQ(r_.lines, Lines{"ok"});
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_EQ(transport_.abortConnectionCalls(), 0);
}

TEST_F(LineReceiverTest, OverlongPartialLineClosesAndStopsDelivery) {
  r_.setMaxLength(5);
  r_.dataReceived("ok\r\nabc");
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  r_.dataReceived("def");  // 6 bytes: could still be 5 plus a delimiter cut in half
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
  r_.dataReceived("g");  // 7 = max + delimiter without one: too long whatever follows
  EXPECT_EQ(r_.exceeded, Lines{"abcdefg"});
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  r_.dataReceived("\r\nnext\r\n");
  EXPECT_EQ(r_.lines, Lines{"ok"});
  EXPECT_EQ(r_.exceeded, Lines{"abcdefg"});
}

TEST_F(LineReceiverTest, OverlongLineFedByteByByteClosesOnce) {
  r_.setMaxLength(4);
  feed(r_, "abcdefghij\r\nz\r\n", 1);
  EXPECT_EQ(r_.exceeded, Lines{"abcdef"});  // max 4 + 2 delimiter bytes
  EXPECT_EQ(transport_.loseConnectionCalls(), 1);
  EXPECT_TRUE(r_.lines.empty());
}

TEST_F(LineReceiverTest, OverridingLineLengthExceededKeepsReceiving) {
  r_.closeOnExceeded = false;
  r_.setMaxLength(3);
  r_.dataReceived("toolong\r\nok\r\n");
  EXPECT_EQ(r_.exceeded, Lines{"toolong"});
  EXPECT_EQ(r_.lines, Lines{"ok"});
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
}

// A line of exactly maxLength whose delimiter arrives split ("abcd\r" then "\n") is within the
// limit, and fed whole it is delivered. Twisted allows maxLength + len(delimiter) - 1 buffered
// bytes before calling lineLengthExceeded; whorl's LineReceiver counts the partial delimiter as
// line bytes and closes the connection. Disabled until line_receiver.cc is fixed.
TEST_F(LineReceiverTest, MaxLengthLineWithSplitDelimiterIsDelivered) {
  r_.setMaxLength(4);
  r_.dataReceived("abcd\r");
  r_.dataReceived("\n");
  EXPECT_EQ(r_.lines, Lines{"abcd"});
  EXPECT_TRUE(r_.exceeded.empty());
  EXPECT_EQ(transport_.loseConnectionCalls(), 0);
}

TEST_F(LineReceiverTest, LoseConnectionInLineReceivedStopsDelivery) {
  r_.onLine = [this](std::string_view line) {
    if (line == "QUIT") transport_.loseConnection();
  };
  r_.dataReceived("a\r\nQUIT\r\nb\r\n");
  EXPECT_EQ(r_.lines, (Lines{"a", "QUIT"}));
  r_.dataReceived("c\r\n");
  EXPECT_EQ(r_.lines, (Lines{"a", "QUIT"}));
}

TEST_F(LineReceiverTest, SetRawModeInLineReceivedSendsTheRestOfTheChunkRaw) {
  r_.onLine = [this](std::string_view line) {
    if (line == "RAW") r_.setRawMode();
  };
  r_.dataReceived("a\r\nRAW\r\nbytes\r\nand more");
  EXPECT_EQ(r_.lines, (Lines{"a", "RAW"}));
  EXPECT_EQ(r_.events, (Lines{"line:a", "line:RAW", "raw:bytes\r\nand more"}));
  r_.dataReceived("x\r\n");
  EXPECT_EQ(r_.raw, "bytes\r\nand morex\r\n");
  EXPECT_EQ(r_.lines, (Lines{"a", "RAW"}));
}

TEST_F(LineReceiverTest, SetRawModeWithBufferedPartialLine) {
  r_.onLine = [this](std::string_view line) {
    if (line == "RAW") r_.setRawMode();
  };
  r_.dataReceived("RA");
  r_.dataReceived("W\r\npay");
  EXPECT_EQ(r_.events, (Lines{"line:RAW", "raw:pay"}));
}

// A length-prefixed body: "BODY 3\r\n" then 3 raw bytes, then lines again.
TEST_F(LineReceiverTest, SetLineModeFromRawDataReceived) {
  size_t want = 0;
  std::string body;
  r_.onLine = [&](std::string_view line) {
    if (line.substr(0, 5) == "BODY ") {
      want = std::stoul(std::string(line.substr(5)));
      r_.setRawMode();
    }
  };
  r_.onRaw = [&](std::string_view data) {
    size_t take = std::min(want - body.size(), data.size());
    body.append(data.substr(0, take));
    if (body.size() == want) r_.setLineMode(data.substr(take));
  };
  r_.dataReceived("BODY 3\r\nxyzafter\r\nnext\r\npart");
  EXPECT_EQ(body, "xyz");
  EXPECT_EQ(r_.lines, (Lines{"BODY 3", "after", "next"}));
  EXPECT_EQ(r_.events,
            (Lines{"line:BODY 3", "raw:xyzafter\r\nnext\r\npart", "line:after", "line:next"}));
  r_.dataReceived("ial\r\n");
  EXPECT_EQ(r_.lines, (Lines{"BODY 3", "after", "next", "partial"}));
}

TEST_F(LineReceiverTest, SetLineModeFromRawDataReceivedByteByByte) {
  size_t want = 0;
  std::string body;
  r_.onLine = [&](std::string_view line) {
    if (line.substr(0, 5) == "BODY ") {
      want = std::stoul(std::string(line.substr(5)));
      body.clear();
      r_.setRawMode();
    }
  };
  r_.onRaw = [&](std::string_view data) {
    size_t take = std::min(want - body.size(), data.size());
    body.append(data.substr(0, take));
    if (body.size() == want) r_.setLineMode(data.substr(take));
  };
  feed(r_, "BODY 3\r\nx\r\nafter\r\nBODY 1\r\n\nend\r\n", 1);
  EXPECT_EQ(body, "\n");
  EXPECT_EQ(r_.lines, (Lines{"BODY 3", "after", "BODY 1", "end"}));
}

TEST_F(LineReceiverTest, SetLineModeOutsideCallbacks) {
  r_.setRawMode();
  r_.dataReceived("raw\r\n");
  EXPECT_EQ(r_.raw, "raw\r\n");
  r_.setLineMode("a\r\nb");
  EXPECT_EQ(r_.lines, Lines{"a"});
  r_.dataReceived("\r\n");
  EXPECT_EQ(r_.lines, (Lines{"a", "b"}));
}

TEST_F(LineReceiverTest, ClearLineBufferInLineReceivedReturnsTheRest) {
  std::string rest;
  r_.onLine = [&](std::string_view line) {
    if (line == "STARTTLS") rest = r_.clearLineBuffer();
  };
  r_.dataReceived("a\r\nSTARTTLS\r\nsecond\r\nthird\r\npart");
  EXPECT_EQ(rest, "second\r\nthird\r\npart");
  EXPECT_EQ(r_.lines, (Lines{"a", "STARTTLS"}));
  EXPECT_EQ(r_.clearLineBuffer(), "");
  r_.dataReceived("next\r\n");
  EXPECT_EQ(r_.lines, (Lines{"a", "STARTTLS", "next"}));
}

TEST_F(LineReceiverTest, ClearLineBufferInLineReceivedWithBufferedStart) {
  std::string rest;
  r_.onLine = [&](std::string_view line) {
    if (line == "STARTTLS") rest = r_.clearLineBuffer();
  };
  r_.dataReceived("START");
  r_.dataReceived("TLS\r\nsecond\r\n");
  EXPECT_EQ(rest, "second\r\n");
  EXPECT_EQ(r_.lines, Lines{"STARTTLS"});
}

TEST_F(LineReceiverTest, ClearLineBufferOutsideCallbacks) {
  r_.dataReceived("a\r\nbc");
  EXPECT_EQ(r_.clearLineBuffer(), "bc");
  r_.dataReceived("d\r\n");
  EXPECT_EQ(r_.lines, (Lines{"a", "d"}));
}

TEST_F(LineReceiverTest, SendLineAppendsTheDelimiter) {
  r_.sendLine("hello");
  EXPECT_EQ(transport_.written(), "hello\r\n");
  r_.sendLine("");
  EXPECT_EQ(transport_.written(), "hello\r\n\r\n");
  r_.setDelimiter("\n");
  r_.sendLine("x");
  EXPECT_EQ(transport_.written(), "hello\r\n\r\nx\n");
}

TEST_F(LineReceiverTest, EchoFromLineReceived) {
  r_.onLine = [this](std::string_view line) { r_.sendLine(line); };
  feed(r_, "one\r\ntwo\r\n", 3);
  EXPECT_EQ(transport_.written(), "one\r\ntwo\r\n");
}

TEST(LineReceiverUnattached, SendLineWithoutTransportIsANoOp) {
  Recorder r;
  r.sendLine("x");  // must not crash
  r.dataReceived("a\r\n");
  EXPECT_EQ(r.lines, Lines{"a"});
}

}  // namespace
}  // namespace whorl::api
