// Finding the example certificates (certs/...) however a program is started.
//
//   std::string path = examples::findFile("certs/server.pem");
//
// Tries, in order: the path as given (absolute, or relative to the current directory, e.g. the
// repository root); the workspace that `bazel run` was started from (BUILD_WORKSPACE_DIRECTORY);
// the program's runfiles (tests). Returns the path as given if none exists, so the error that
// follows names what the user asked for.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace whorl::examples {

inline bool fileExists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

inline std::string findFile(const std::string& path) {
  if (path.empty() || path[0] == '/' || fileExists(path)) return path;
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    std::string p = std::string(ws) + "/" + path;
    if (fileExists(p)) return p;
  }
  if (const char* rf = std::getenv("RUNFILES_DIR")) {
    std::string p = std::string(rf) + "/whorl/" + path;
    if (fileExists(p)) return p;
  }
  if (const char* src = std::getenv("TEST_SRCDIR")) {
    std::string p = std::string(src) + "/whorl/" + path;
    if (fileExists(p)) return p;
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string p = std::string(self) + ".runfiles/whorl/" + path;
    if (fileExists(p)) return p;
  }
  return path;
}

}  // namespace whorl::examples
