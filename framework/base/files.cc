#include "framework/base/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace whorl {

namespace {
bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}
}  // namespace

std::string findDataFile(const std::string& path, const std::string& workspace) {
  if (path.empty() || path[0] == '/' || exists(path)) return path;
  std::string candidates[4];
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) candidates[0] = std::string(ws) + "/" + path;
  if (const char* rf = std::getenv("RUNFILES_DIR")) candidates[1] = std::string(rf) + "/" + workspace + "/" + path;
  if (const char* src = std::getenv("TEST_SRCDIR")) candidates[2] = std::string(src) + "/" + workspace + "/" + path;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    candidates[3] = std::string(self) + ".runfiles/" + workspace + "/" + path;
  }
  for (const auto& c : candidates) {
    if (!c.empty() && exists(c)) return c;
  }
  return path;
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::fromErrno(errno, "cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace whorl
