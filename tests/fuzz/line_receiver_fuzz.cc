// Fuzz target: LineReceiver (framework/api/line_receiver.h), the line splitter under every
// line-based protocol (SMTP, STARTTLS, the examples).
//
// Input: one byte choosing the first delimiter and the length limit, then the bytes a peer sends.
// The protocol reacts to some lines the way real protocols do: "raw" switches to raw mode (a raw
// '!' switches back, the rest of that raw chunk parsed as lines), "delim" changes the delimiter,
// "send" writes a line back, "close" closes, "clear" takes the unprocessed input as a STARTTLS
// would (everything after it then counts as the next layer's). Whole, byte by byte and random
// chunks must give the same events, bytes written and hand-over.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "framework/api/line_receiver.h"
#include "tests/fake_transport.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

constexpr std::string_view kDelimiters[] = {"\r\n", "\n", std::string_view("\0", 1), "ab",
                                            "\r\n\r\n"};
constexpr size_t kMaxLengths[] = {16384, 1, 4, 16, 100};

class Recorder : public whorl::api::LineReceiver {
 public:
  void lineReceived(std::string_view line) override {
    events += "line '" + whorl::fuzz::escape(line) + "'\n";
    if (line == "raw") {
      setRawMode();
    } else if (line == "delim") {
      delimiterIndex_ = (delimiterIndex_ + 1) % std::size(kDelimiters);
      setDelimiter(std::string(kDelimiters[delimiterIndex_]));
    } else if (line == "send") {
      sendLine("sent");
    } else if (line == "close") {
      transport()->loseConnection();
    } else if (line == "clear") {
      handedOver = true;
      tail = clearLineBuffer();
    }
  }
  void rawDataReceived(std::string_view data) override {
    size_t bang = data.find('!');
    raw(data.substr(0, bang));
    if (bang != std::string_view::npos) {
      events += "line mode\n";
      setLineMode(data.substr(bang + 1));
    }
  }
  void lineLengthExceeded(std::string_view partial) override {
    whorl::fuzz::check(partial.size() > maxLength(), "only a line over the limit is too long");
    // How much of the long line had arrived differs with the chunks; its start does not.
    events += "too long '" + whorl::fuzz::escape(partial.substr(0, maxLength())) + "...'\n";
    LineReceiver::lineLengthExceeded(partial);  // closes
  }

  void raw(std::string_view data) {
    if (data.empty()) return;
    // Raw data arrives in whatever pieces the chunks make: record it as one run.
    if (events.ends_with("'raw\n")) {
      events.resize(events.size() - 5);
    } else {
      events += "raw '";
    }
    events += whorl::fuzz::escape(data) + "'raw\n";
  }

  size_t delimiterIndex_ = 0;
  std::string events;
  bool handedOver = false;
  std::string tail;
};

std::string run(uint8_t config, std::string_view stream, const whorl::fuzz::Cuts& cuts) {
  whorl::test::FakeReactor reactor;
  whorl::test::FakeTransport transport(reactor);
  Recorder r;
  r.delimiterIndex_ = config % std::size(kDelimiters);
  r.setDelimiter(std::string(kDelimiters[r.delimiterIndex_]));
  r.setMaxLength(kMaxLengths[(config / std::size(kDelimiters)) % std::size(kMaxLengths)]);
  transport.connect(&r);
  cuts.forEach(stream, [&](std::string_view chunk) {
    if (r.handedOver) {
      r.tail.append(chunk);  // the next layer's bytes
    } else {
      r.dataReceived(chunk);
    }
  });
  std::string out = r.events + "written '" + whorl::fuzz::escape(transport.written()) + "'\n";
  if (transport.disconnecting()) out += "closed\n";
  if (r.handedOver) out += "handed over '" + whorl::fuzz::escape(r.tail) + "'\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view stream = whorl::fuzz::asText(data + 1, size - 1);
  whorl::fuzz::expectSameForEveryCut(
      stream, "LineReceiver events",
      [&](const whorl::fuzz::Cuts& cuts) { return run(data[0], stream, cuts); });
  return 0;
}
