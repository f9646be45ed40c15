// Fuzz target: the session ticket key file (framework/tls/ticket_keys.h), which an operator
// writes and every instance of a fleet reads.
//
// The bytes are a file (a memfd, read through TicketKeys::loadFile as a real file would be). The
// target checks that a text file means the same with CRLF line ends (same keys or the same
// error), that reloading the same file keeps the same keys, and that no error quotes key
// material (only names and positions).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "framework/tls/ticket_keys.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using whorl::tls::TicketKeys;

// One memfd reused for every input, so that error messages name the same path.
class File {
 public:
  File() : fd_(memfd_create("ticket.keys", 0)) {
    whorl::fuzz::check(fd_ >= 0, "memfd_create works");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& write(std::string_view bytes) {
    whorl::fuzz::check(ftruncate(fd_, 0) == 0, "ftruncate works");
    whorl::fuzz::check(
        pwrite(fd_, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()),
        "pwrite works");
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

bool looksText(std::string_view data) {
  for (unsigned char c : data) {
    bool text =
        (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
    if (!text) return false;
  }
  return true;
}

std::string load(File& file, std::string_view bytes) {
  const std::string& path = file.write(bytes);
  auto keys = TicketKeys::loadFile(path);
  if (!keys) {
    const std::string& m = keys.status().message();
    // A key line is 160 hex digits; 32 in a row in an error would be secret material.
    size_t run = 0;
    for (char c : m) {
      run = std::isxdigit(static_cast<unsigned char>(c)) ? run + 1 : 0;
      whorl::fuzz::check(run <= 32, "errors quote no key material beyond a key name");
    }
    return "error: " + m;
  }
  std::string out;
  for (const auto& name : (*keys)->keyNamesHex()) out += name + "\n";
  whorl::fuzz::check((*keys)->keyCount() >= 1, "a loaded file has a key");
  whorl::fuzz::check((*keys)->reload(path).isOk(), "reloading the same file works");
  std::string again;
  for (const auto& name : (*keys)->keyNamesHex()) again += name + "\n";
  whorl::fuzz::check(again == out, "reloading an unchanged file keeps the keys");
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static File file;
  std::string_view bytes = whorl::fuzz::asText(data, size);
  std::string lf = load(file, bytes);
  if (looksText(bytes)) {
    std::string crlf_bytes;
    for (char c : bytes) {
      if (c == '\n') crlf_bytes.push_back('\r');
      crlf_bytes.push_back(c);
    }
    std::string crlf = load(file, crlf_bytes);
    if (crlf != lf) {
      std::fprintf(stderr,
                   "fuzz: CRLF line ends change the key file:\n--- LF:\n%s\n--- CRLF:\n%s\n",
                   lf.c_str(), crlf.c_str());
      std::abort();
    }
  }
  return 0;
}
