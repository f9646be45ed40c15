// The load generator's command line: flags, their validation, and the parsed options.
//
//   LoadOptions options;
//   Status s = parseLoadOptions(argc, argv, &options);   // kInvalidArgument: exit 2
//   if (options.help) { std::fputs(loadUsage().c_str(), stdout); return 0; }
//
// Plain values; nothing here touches the network.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/base/status.h"

namespace whorl::loadgen {

enum class Mode { kEcho, kHttp, kHandshake };
// What a handshake-mode connection does between the handshake and the close.
enum class Request { kNone, kHttp, kEcho };

const char* toString(Mode mode);
const char* toString(Request request);

struct LoadOptions {
  Mode mode = Mode::kHttp;
  Request request = Request::kNone;
  std::string target;  // as given: host:port
  std::string host;    // without brackets
  uint16_t port = 0;
  bool tls = true;
  std::string hostname;  // the name to verify and send as SNI (default: host)
  std::string caPath;    // empty: the platform trust store
  int connections = 16;
  int shards = 1;
  int pipeline = 1;
  double duration = 10;  // measured seconds
  double warmup = 1;     // seconds before the measurement starts
  double rate = 0;       // requests/s over all connections; 0: closed loop
  uint64_t size = 1024;  // echo message bytes
  std::string path = "/";
  bool resume = false;
  double timeout = 10;  // seconds, for connect, handshake and each request
  std::string ktls = "off";
  std::vector<int> cpus;  // pin the shards to these CPUs; empty: no pinning
  int serverPid = 0;      // the server under test, for its CPU per request; 0: none
  bool json = false;
  bool verbose = false;
  bool help = false;
};

// Parses and checks argv. Errors name the flag and say what is wrong.
Status parseLoadOptions(int argc, const char* const* argv, LoadOptions* options);
std::string loadUsage();

// "host:port", "[v6]:port" -> host, port.
Status splitHostPort(const std::string& target, std::string* host, uint16_t* port);
// "0,2-3" -> {0, 2, 3}.
Status parseCpuList(const std::string& text, std::vector<int>* cpus);

}  // namespace whorl::loadgen
