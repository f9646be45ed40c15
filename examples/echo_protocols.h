// The protocols of Twisted's echoserv.py and echoclient.py, shared by the TCP and TLS examples.
//
//   auto factory = Factory::forProtocol<examples::Echo>();
//   auto client = Factory::forProtocol<examples::EchoClient>(&exitCode);
//
// Echo writes back what it receives. EchoClient sends three lines, prints each echoed line as
// "receive: <line>", closes after "Bye-bye!" and stops the runtime when the connection is lost.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "framework/api/line_receiver.h"
#include "framework/api/protocol.h"

namespace whorl::examples {

class Echo : public api::Protocol {
 public:
  void dataReceived(std::string_view data) override { transport()->write(data); }
};

class EchoClient : public api::LineReceiver {
 public:
  static constexpr std::string_view kEnd = "Bye-bye!";
  explicit EchoClient(int* exitCode) : exitCode_(exitCode) {}

  void connectionMade() override {
    sendLine("Hello, world!");
    sendLine("What a fine day it is.");
    sendLine(kEnd);
  }
  void lineReceived(std::string_view line) override {
    std::printf("receive: %.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
    if (line == kEnd) {
      sawEnd_ = true;
      transport()->loseConnection();
    }
  }
  void connectionLost(const Status& reason) override {
    std::printf("connection lost: %s\n", reason.message().c_str());
    std::fflush(stdout);
    if (!sawEnd_) *exitCode_ = 1;
    transport()->reactor().stop();
  }

 private:
  int* exitCode_;
  bool sawEnd_ = false;
};

}  // namespace whorl::examples
