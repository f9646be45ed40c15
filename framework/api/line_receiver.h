// LineReceiver: a Protocol that splits input into lines (Twisted's basic.LineReceiver).
//
//   class Chat : public LineReceiver {
//     void lineReceived(std::string_view line) override { sendLine(line); }
//   };
//
// The delimiter defaults to "\r\n" (setDelimiter changes it). A line longer than maxLength()
// (default 16384 bytes) calls lineLengthExceeded(), which by default logs and closes the
// connection with that reason. setRawMode() hands the rest of the input to rawDataReceived()
// until setLineMode(); clearLineBuffer() takes the bytes not yet delivered (used when switching
// protocols mid-stream, e.g. startTLS). Lines passed to lineReceived() are views valid only for
// the duration of the call.
#pragma once

#include <string>
#include <string_view>

#include "framework/api/protocol.h"

namespace whorl::api {

class LineReceiver : public Protocol {
 public:
  void dataReceived(std::string_view data) override;

  virtual void lineReceived(std::string_view line) = 0;
  virtual void rawDataReceived(std::string_view data) { (void)data; }
  // Default: log the reason and close the connection.
  virtual void lineLengthExceeded(std::string_view partialLine);

  void sendLine(std::string_view line);
  void setRawMode() { rawMode_ = true; }
  // Back to lines; `extra` is parsed as if just received.
  void setLineMode(std::string_view extra = {});
  // Removes and returns every received byte not yet delivered.
  std::string clearLineBuffer();
  std::string takeUnprocessedInput() override { return clearLineBuffer(); }

  void setDelimiter(std::string delimiter) { delimiter_ = std::move(delimiter); }
  const std::string& delimiter() const { return delimiter_; }
  void setMaxLength(size_t maxLength) { maxLength_ = maxLength; }
  size_t maxLength() const { return maxLength_; }

 private:
  void process(std::string_view data);
  void parse(std::string_view chunk);  // delivers lines of work_ from pos_
  bool halted() const;

  std::string delimiter_ = "\r\n";
  size_t maxLength_ = 16384;
  bool rawMode_ = false;
  bool busy_ = false;
  std::string buffer_;     // undelivered bytes kept between calls
  std::string reentrant_;  // bytes fed while a callback was running
  // The chunk being processed and how far delivery got (valid while busy_).
  std::string_view work_;
  size_t pos_ = 0;
};

}  // namespace whorl::api
