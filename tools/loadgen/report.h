// LoadStats and the report: what the load generator counts and how it prints it.
//
//   LoadStats total;                       // one LoadStats per shard during the run,
//   for (auto& s : shards) total.merge(s); // merged once the shards have stopped
//   RunInfo info{.mode = "http", ...};
//   std::puts(formatText(info, total).c_str());   // a compact table
//   std::puts(formatJson(info, total).c_str());   // one line of JSON with the same fields
//
// A shard's LoadStats is touched only by its own thread; counts cover the measured window only
// (after the warm-up). Latencies are microseconds. Plain values, no ownership subtleties.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/loadgen/histogram.h"

namespace whorl::loadgen {

// Kinds of errors; HTTP responses that are not 2xx are counted by status instead ("status-503").
enum class ErrorKind {
  kConnect,   // the TCP connection could not be made
  kTls,       // the TLS handshake failed, or a TLS error on an established connection
  kTimeout,   // connect, handshake or a request took longer than --timeout
  kMismatch,  // an echoed byte differed from what was sent
  kClosed,    // the connection ended with requests outstanding
  kHttp,      // a malformed HTTP response
};
inline constexpr int kErrorKinds = 6;
const char* errorKindName(ErrorKind kind);

struct LoadStats {
  static constexpr int kMaxStatus = 600;

  uint64_t requests = 0;    // completed successfully (2xx, echoed intact, handshake cycles)
  uint64_t handshakes = 0;  // completed TLS handshakes
  uint64_t resumed = 0;     // ... of which resumed a session
  uint64_t connects = 0;    // TCP connections established
  uint64_t bytesIn = 0;     // on the wire, TLS records included
  uint64_t bytesOut = 0;
  std::array<uint64_t, kErrorKinds> errors{};
  std::array<uint64_t, kMaxStatus> statusErrors{};  // non-2xx responses by status
  LatencyHistogram latency;

  void addError(ErrorKind kind) { ++errors[static_cast<size_t>(kind)]; }
  void addStatusError(int status) {
    ++statusErrors[static_cast<size_t>(status >= 0 && status < kMaxStatus ? status : 0)];
  }
  uint64_t totalErrors() const;
  void merge(const LoadStats& other);
};

// What the report says about the run besides the counts.
struct RunInfo {
  std::string mode;     // "echo", "http", "handshake"
  std::string request;  // handshake mode: "none", "http", "echo"
  std::string target;   // host:port as given
  bool tls = true;
  std::string hostname;  // verified name / SNI (TLS)
  std::string path;      // http
  uint64_t size = 0;     // echo
  int connections = 0;
  int shards = 0;
  int pipeline = 1;
  double rate = 0;  // 0: closed loop
  bool resume = false;
  double windowSeconds = 0;  // the measured time
  double warmupSeconds = 0;
  uint64_t lateRequests = 0;  // open loop: sent over 1 ms behind schedule
  std::vector<std::string> notes;  // printed under the table, "notes" in JSON
  // --server-pid: the server's CPU and wake-ups over the measured window.
  int serverPid = 0;
  bool serverSampled = false;
  double serverUserSeconds = 0;
  double serverSystemSeconds = 0;
  uint64_t serverWakeups = 0;      // voluntary context switches
  uint64_t serverPreemptions = 0;  // involuntary ones
};

std::string formatText(const RunInfo& info, const LoadStats& stats);
std::string formatJson(const RunInfo& info, const LoadStats& stats);
// The errors as "connect 2, status-503 10", or "none".
std::string describeErrors(const LoadStats& stats);

}  // namespace whorl::loadgen
