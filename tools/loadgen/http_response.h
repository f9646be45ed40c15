// HttpResponseParser: an incremental HTTP/1.1 response parser for the load generator.
//
//   HttpResponseParser parser;                  // one per connection slot, reused
//   using R = HttpResponseParser::Result;
//   while (!data.empty()) {
//     size_t used = 0;
//     R r = parser.feed(data, &used);           // stops after each complete response
//     data.remove_prefix(used);
//     if (r == R::kError) return fail(parser.error());
//     if (r == R::kNeedMore) break;
//     onResponse(parser.status(), parser.keepAlive());
//   }
//   parser.finish();                            // at EOF: completes a close-delimited body
//
// Understands the status line, Content-Length, Transfer-Encoding: chunked (with trailers),
// bodies delimited by the connection closing, interim 1xx responses (skipped), bodiless 204/304,
// and Connection: close / keep-alive (HTTP/1.0 keeps alive only when asked). Body bytes are
// counted, not stored. Lines are parsed in place; only a line split across reads is copied, into
// a buffer kept between calls (no allocation once it has grown to the longest line). A line over
// 16 KiB is an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace whorl::loadgen {

class HttpResponseParser {
 public:
  enum class Result { kNeedMore, kComplete, kError };
  static constexpr size_t kMaxLine = 16 * 1024;

  HttpResponseParser();

  // Forget any partial response (a new connection).
  void reset();
  // Parses from the start of `data`, stopping after one complete response; *used is set to the
  // bytes consumed. After kError the parser stays failed until reset().
  Result feed(std::string_view data, size_t* used);
  // The connection closed: kComplete if that ends a close-delimited response, kNeedMore if no
  // response was in progress, kError if one was cut short.
  Result finish();

  // True between responses (no byte of the next one seen yet).
  bool idle() const { return state_ == State::kStatusLine && !started_; }
  // The last completed response.
  int status() const { return status_; }
  bool keepAlive() const { return keepAlive_; }
  uint64_t bodyBytes() const { return bodyBytes_; }
  const char* error() const { return error_; }

 private:
  enum class State {
    kStatusLine,
    kHeaderLine,
    kBody,  // Content-Length bytes left
    kChunkSize,
    kChunkData,
    kChunkDataEnd,  // the CRLF after a chunk's data
    kTrailer,
    kUntilClose,
    kFailed,
  };
  // A complete line (without CR LF) from data[*pos...], or false when more input is needed.
  bool takeLine(std::string_view data, size_t* pos, std::string_view* line);
  bool parseStatusLine(std::string_view line);
  bool parseHeader(std::string_view line);
  // The headers ended: decide how the body is framed. True if the response is complete.
  bool headersDone();
  Result fail(const char* why);
  void beginResponse();

  State state_ = State::kStatusLine;
  std::string line_;  // a line split across reads
  bool started_ = false;
  int status_ = 0;
  int minor_ = 1;
  bool close_ = false;
  bool keepAliveToken_ = false;
  bool chunked_ = false;
  bool otherEncoding_ = false;
  bool haveLength_ = false;
  uint64_t length_ = 0;
  uint64_t left_ = 0;
  uint64_t bodyBytes_ = 0;
  bool keepAlive_ = true;
  const char* error_ = "";
};

}  // namespace whorl::loadgen
