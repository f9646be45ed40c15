// shout: the program of README.md's "Writing a protocol" (copied there from the region below,
// which //tests:docs_snippets_test keeps equal): a TCP server on port 8001 that answers each line
// in upper case and ends the connection on "quit".
//
//   bazel run //examples:shout    # then send it lines ending in CRLF on localhost:8001
// [snippet shout]
#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>

#include "framework/api/line_receiver.h"
#include "framework/base/log.h"
#include "framework/endpoint/endpoint.h"
#include "framework/reactor/runtime.h"

using namespace whorl;

// Answers each line in upper case; "quit" ends the connection.
class Shout : public api::LineReceiver {
 public:
  void connectionMade() override { sendLine("hello, " + transport()->getPeer().toString()); }

  void lineReceived(std::string_view line) override {
    if (line == "quit") {
      sendLine("bye");
      transport()->loseConnection();  // sends "bye" first, then closes
      return;
    }
    std::string upper(line);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    sendLine(upper);
  }

  void connectionLost(const Status& reason) override {
    WHORL_LOG(kInfo, "%s left: %s", transport()->getPeer().toString().c_str(),
              reason.message().c_str());
  }
};

int main() {
  reactor::Runtime runtime;  // one shard per online CPU
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  endpoint::TCP4ServerEndpoint server(runtime, 8001);
  auto port = server.listen(api::Factory::forProtocol<Shout>());  // one Shout per connection
  if (!port) {
    std::fprintf(stderr, "%s\n", port.status().message().c_str());
    return 1;
  }
  return runtime.run();  // serves until Ctrl-C, then lets open connections finish
}
// [end snippet]
