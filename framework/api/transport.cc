#include "framework/api/transport.h"

#include <unistd.h>

#include <string>

#include "framework/api/lower_transport.h"

namespace whorl::api {

const char* toString(TlsMode mode) {
  switch (mode) {
    case TlsMode::kNone: return "";
    case TlsMode::kUserspace: return "userspace";
    case TlsMode::kKernelTx: return "kernel TX";
    case TlsMode::kKernelTxRx: return "kernel TX+RX";
  }
  return "";
}

Status fileEndedEarly(uint64_t missing) {
  return Status(Status::Code::kIo, "sendFile: the file ended " + std::to_string(missing) +
                                       " bytes before the requested length");
}

LowerTransport* lowerTransportOf(Transport& transport) { return transport.lower(); }

void readFileBlocking(int fd, uint64_t offset, size_t length,
                      std::function<void(Result<std::string_view>)> done) {
  std::string buf(length, '\0');
  ssize_t n = pread(fd, buf.data(), length, static_cast<off_t>(offset));
  if (n < 0) {
    done(Status::fromErrno(errno, "read file"));
    return;
  }
  done(std::string_view(buf.data(), static_cast<size_t>(n)));
}

void Transport::sendFile(int fd, uint64_t offset, uint64_t length,
                         std::function<void(Status)> done) {
  while (length > 0) {
    size_t chunk = length < 65536 ? static_cast<size_t>(length) : 65536;
    Status failed;
    bool eof = false;
    readFileBlocking(fd, offset, chunk, [&](Result<std::string_view> r) {
      if (!r) {
        failed = r.status();
      } else if (r->empty()) {
        eof = true;
      } else {
        write(*r);
        offset += r->size();
        length -= r->size();
      }
    });
    if (!failed.isOk()) {
      done(failed);
      return;
    }
    if (eof) {
      done(fileEndedEarly(length));
      return;
    }
  }
  done(Status::ok());
}

}  // namespace whorl::api
