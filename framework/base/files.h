// Finding a program's data files (certificates, keys, configuration) however it was started: from
// the repository or an install directory, with `bazel run`, or as a Bazel test; and reading one.
//
//   auto cert = tls::PrivateCertificate::loadPEMFile(findDataFile("certs/server.pem"));
//   Result<std::string> pem = readFile(path);   // or "cannot read <path>: No such file or directory"
//
// findDataFile tries, in order: the path as given (absolute, or relative to the working
// directory); the workspace `bazel run` was started from (BUILD_WORKSPACE_DIRECTORY); the
// program's runfiles (RUNFILES_DIR, TEST_SRCDIR, <program>.runfiles) under `workspace`, the Bazel
// workspace name that holds the file ("whorl" for whorl's own certs/). Returns the path as given
// when none exists, so the error that follows names what the user asked for. Reads the
// environment and the file system; owns nothing.
#pragma once

#include <string>

#include "framework/base/status.h"

namespace whorl {

std::string findDataFile(const std::string& path, const std::string& workspace = "whorl");

// The whole file, read on the calling thread (for start-up and reloads, not for a shard's loop).
Result<std::string> readFile(const std::string& path);

}  // namespace whorl
