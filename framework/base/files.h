// Finding a program's data files (certificates, keys, configuration) however it was started: from
// the repository or an install directory, with `bazel run`, or as a Bazel test.
//
//   auto cert = tls::PrivateCertificate::loadPEMFile(findDataFile("certs/server.pem"));
//
// Tries, in order: the path as given (absolute, or relative to the working directory); the
// workspace `bazel run` was started from (BUILD_WORKSPACE_DIRECTORY); the program's runfiles
// (RUNFILES_DIR, TEST_SRCDIR, <program>.runfiles) under `workspace`, the Bazel workspace name that
// holds the file ("whorl" for whorl's own certs/). Returns the path as given when none exists, so
// the error that follows names what the user asked for. Reads the environment and the file
// system; owns nothing.
#pragma once

#include <string>

namespace whorl {

std::string findDataFile(const std::string& path, const std::string& workspace = "whorl");

}  // namespace whorl
