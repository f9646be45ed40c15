#include "framework/base/status.h"

#include <cstdio>
#include <cstdlib>

namespace whorl {

namespace detail {
void resultValueOnError(const Status& status) {
  std::fprintf(stderr, "Result::value() on an error: %s\n", status.message().c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

Status Status::fromErrno(int errnum, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(errnum);
  Code code = Code::kIo;
  switch (errnum) {
    case ECONNRESET:
    case EPIPE:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
      code = Code::kConnectionLost;
      break;
    case ECONNREFUSED:
      code = Code::kRefused;
      break;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      code = Code::kUnavailable;
      break;
    default:
      break;
  }
  return Status(code, std::move(msg), errnum);
}

const char* Status::codeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kIo: return "i/o error";
    case Code::kConnectionDone: return "connection done";
    case Code::kConnectionLost: return "connection lost";
    case Code::kAborted: return "aborted";
    case Code::kTimeout: return "timeout";
    case Code::kRefused: return "refused";
    case Code::kTls: return "tls";
    case Code::kUnavailable: return "unavailable";
    case Code::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::string Status::toString() const {
  if (isOk()) return "ok";
  std::string s = codeName(code_);
  s += ": ";
  s += message();
  return s;
}

Status Status::withContext(std::string_view context) const {
  if (isOk()) return *this;
  std::string msg(context);
  msg += ": ";
  msg += message();
  return Status(code_, std::move(msg), errnum_);
}

const std::string& Status::emptyMessage() {
  static const std::string kEmpty;
  return kEmpty;
}

}  // namespace whorl
