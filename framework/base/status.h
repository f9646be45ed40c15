// Status and Result<T>: how whorl reports failure without exceptions.
//
//   Result<int> parsePort(std::string_view s);
//   auto port = parsePort("80x");
//   if (!port) { std::fprintf(stderr, "%s\n", port.status().message().c_str()); return 1; }
//   use(*port);
//
// A Status is a code plus a message written for a person ("bind 0.0.0.0:80: Permission denied").
// The same type is the reason a connection ended (Protocol::connectionLost): kConnectionDone is a
// clean close, everything else says what went wrong. Values, no ownership subtleties.
#pragma once

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace whorl {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kInvalidArgument,  // the caller passed something malformed
    kIo,               // a system call failed; errnum() says which errno
    kConnectionDone,   // the connection closed cleanly
    kConnectionLost,   // the peer vanished (reset, timeout, broken pipe)
    kAborted,          // closed by abortConnection() or a shutdown deadline
    kTimeout,          // a deadline passed (connect, handshake, idle)
    kRefused,          // the peer or a factory refused the connection
    kTls,              // a TLS failure: handshake, verification, protocol
    kUnavailable,      // the operation cannot be done now (resources exhausted)
    kCancelled,        // the caller cancelled the operation (Deferred::cancel)
  };

  Status() = default;
  Status(Code code, std::string message, int errnum = 0)
      : code_(code), errnum_(errnum), message_(std::make_unique<std::string>(std::move(message))) {}
  Status(const Status& o)
      : code_(o.code_), errnum_(o.errnum_),
        message_(o.message_ ? std::make_unique<std::string>(*o.message_) : nullptr) {}
  Status& operator=(const Status& o) {
    if (this != &o) *this = Status(o);
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status ok() { return Status(); }
  // A failed system call: "<what>: <strerror(errnum)>".
  static Status fromErrno(int errnum, std::string_view what);
  static Status invalidArgument(std::string message) {
    return Status(Code::kInvalidArgument, std::move(message));
  }
  static Status cancelled(std::string message = "cancelled") {
    return Status(Code::kCancelled, std::move(message));
  }
  static Status connectionDone() {
    return Status(Code::kConnectionDone, "Connection was closed cleanly.");
  }

  bool isOk() const { return code_ == Code::kOk; }
  explicit operator bool() const { return isOk(); }
  // True for the reason of a connection that ended without an error.
  bool isCleanClose() const { return code_ == Code::kConnectionDone; }
  Code code() const { return code_; }
  int errnum() const { return errnum_; }
  const std::string& message() const { return message_ ? *message_ : emptyMessage(); }
  // The message with a short prefix naming the code, for logs.
  std::string toString() const;
  static const char* codeName(Code code);

  // Prepends context: Status::fromErrno(ECONNREFUSED, "connect").withContext("127.0.0.1:1")
  // reads "127.0.0.1:1: connect: Connection refused".
  Status withContext(std::string_view context) const;

 private:
  static const std::string& emptyMessage();
  Code code_ = Code::kOk;
  int errnum_ = 0;
  // On the heap: an ok Status (the common case) is two words, and connections keep several.
  std::unique_ptr<std::string> message_;
};

namespace detail {
// What value() on an error does: prints "Result::value() on an error: <message>" to stderr and
// aborts (a bug in the caller, who should have checked isOk()).
[[noreturn]] void resultValueOnError(const Status& status);
}  // namespace detail

// A value or the Status saying why there is none. Never holds an ok Status without a value.
// value(), * and -> on an error abort the process with the status message: check isOk() first.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).isOk()) {
      v_ = Status(Status::Code::kInvalidArgument, "Result constructed from an ok Status");
    }
  }

  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  const Status& status() const {
    static const Status kOk;
    return isOk() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return *checked(); }
  const T& value() const& { return *checked(); }
  T&& value() && { return std::move(*checked()); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  // One branch on the ok path; no exceptions.
  T* checked() {
    T* v = std::get_if<T>(&v_);
    if (v == nullptr) [[unlikely]] detail::resultValueOnError(*std::get_if<Status>(&v_));
    return v;
  }
  const T* checked() const {
    const T* v = std::get_if<T>(&v_);
    if (v == nullptr) [[unlikely]] detail::resultValueOnError(*std::get_if<Status>(&v_));
    return v;
  }

  std::variant<T, Status> v_;
};

}  // namespace whorl

// Propagates a failed Status from an expression returning Status.
#define WHORL_RETURN_IF_ERROR(expr)        \
  do {                                     \
    ::whorl::Status whorl_status_ = (expr); \
    if (!whorl_status_.isOk()) return whorl_status_; \
  } while (0)
