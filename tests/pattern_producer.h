// PatternProducer: a server protocol for flow-control tests that writes a known byte stream as fast
// as the transport lets it, then closes; and the check a reading peer makes of what arrived.
//
//   class Writer : public testutil::PatternProducer {
//    public:
//     Writer() : PatternProducer(size_t{1} << 30) {}      // 1 GiB
//     void wrote(size_t sent) override { ... }              // after each 64 KiB write
//   };
//   ... on the peer: ok = ok && testutil::isPattern(buf, n, received);   received += n;
//
// Byte i of the stream is i % 251: a prime, so no power-of-two buffer or record size lines up
// with it, and a byte lost, repeated or reordered anywhere shows. The producer stops writing on
// pauseProducing() (unless told to ignore it) and goes on at resumeProducing(); it never writes
// after the transport started disconnecting. The transport owns the producer, as any protocol.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "framework/api/protocol.h"

namespace testutil {

inline constexpr size_t kPatternPeriod = 251;

inline char patternByte(size_t offset) { return static_cast<char>(offset % kPatternPeriod); }

// Whether data[0, n) is the stream from `offset` on, checking every `stride`-th byte (a stride
// keeps gigabyte transfers cheap to check; any misalignment still shows).
inline bool isPattern(const char* data, size_t n, size_t offset, size_t stride = 1) {
  for (size_t i = 0; i < n; i += stride) {
    if (data[i] != patternByte(offset + i)) return false;
  }
  return true;
}

class PatternProducer : public whorl::api::Protocol {
 public:
  static constexpr size_t kWriteSize = 64 * 1024;

  // `ignorePause`: write all `total` bytes at once, flow control or not (then loseConnection()).
  explicit PatternProducer(size_t total, bool ignorePause = false)
      : total_(total), ignorePause_(ignorePause) {}

  void connectionMade() override { produce(); }
  void pauseProducing() override { paused_ = true; }
  void resumeProducing() override {
    paused_ = false;
    produce();
  }

 protected:
  // After each write, with the bytes written so far.
  virtual void wrote(size_t sent) { (void)sent; }
  // After the last write, just before loseConnection().
  virtual void finished() {}

  void produce() {
    while ((!paused_ || ignorePause_) && sent_ < total_ && !transport()->disconnecting()) {
      size_t n = std::min(kWriteSize, total_ - sent_);
      transport()->write(std::string_view(chunkSource().data() + sent_ % kPatternPeriod, n));
      sent_ += n;
      wrote(sent_);
    }
    if (sent_ == total_ && !transport()->disconnecting()) {
      finished();
      transport()->loseConnection();
    }
  }

 private:
  // One write's worth of the pattern from any phase: the write at offset s starts at s % 251.
  static const std::string& chunkSource() {
    static const std::string source = [] {
      std::string p(kWriteSize + kPatternPeriod, '\0');
      for (size_t i = 0; i < p.size(); ++i) p[i] = patternByte(i);
      return p;
    }();
    return source;
  }

  size_t total_;
  bool ignorePause_;
  bool paused_ = false;
  size_t sent_ = 0;
};

}  // namespace testutil
