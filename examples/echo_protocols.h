// The protocols of Twisted's echoserv.py and echoclient.py, shared by the TCP and TLS examples.
//
//   auto factory = Factory::forProtocol<examples::Echo>();
//   Deferred<int> done;                      // fires with the exit status once the connection ends
//   co_await connectProtocol<examples::EchoClient>(endpoint, done);
//
// Echo writes back what it receives. EchoClient sends three lines, prints each echoed line as
// "receive: <line>", closes after "Bye-bye!", prints "connection lost: <reason>" when the
// connection ends and then fires `done` with 0 if it saw "Bye-bye!", else 1 (the seed's
// `done.callback(None)` in echoclient_ssl.py). connectionFailed() is what the clients print when
// they cannot connect (echoclient.py's clientConnectionFailed).
#pragma once

#include <cstdio>

#include "framework/whorl.h"

namespace whorl::examples {

// [snippet echo]
class Echo : public Protocol {
 public:
  void dataReceived(std::string_view data) override { transport()->write(data); }
};
// [end snippet]

// [snippet echo-client]
class EchoClient : public LineReceiver {
 public:
  static constexpr std::string_view kEnd = "Bye-bye!";
  explicit EchoClient(Deferred<int> done) : done_(std::move(done)) {}

  void connectionMade() override {
    sendLine("Hello, world!");
    sendLine("What a fine day it is.");
    sendLine(kEnd);
  }
  void lineReceived(std::string_view line) override {
    std::printf("receive: %.*s\n", static_cast<int>(line.size()), line.data());
    if (line == kEnd) {
      sawEnd_ = true;
      transport()->loseConnection();
    }
  }
  void connectionLost(const Status& reason) override {
    std::printf("connection lost: %s\n", reason.message().c_str());
    done_.callback(sawEnd_ ? 0 : 1);
  }

 private:
  Deferred<int> done_;
  bool sawEnd_ = false;
};
// [end snippet]

// Prints "connection failed: <reason>" and gives the exit status, 1.
inline int connectionFailed(const Status& why) {
  std::printf("connection failed: %s\n", why.message().c_str());
  return 1;
}

}  // namespace whorl::examples
