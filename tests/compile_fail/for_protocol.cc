// Not built by Bazel: tests/compile_fail/for_protocol_test.sh compiles it with one CASE_ macro at
// a time and checks what the compiler says. Without a macro it must compile.
#include <memory>
#include <string>

#include "framework/api/protocol.h"

using namespace whorl;

class Chat : public api::Protocol {
 public:
  Chat(int port, std::string room) : port_(port), room_(std::move(room)) {}

 private:
  int port_;
  std::string room_;
};

class NotAProtocol {};

int main() {
  std::shared_ptr<api::Factory> f = api::Factory::forProtocol<Chat>(8000, "lobby");
#if defined(CASE_WRONG_ARGUMENTS)
  f = api::Factory::forProtocol<Chat>(8000);
#elif defined(CASE_NOT_A_PROTOCOL)
  f = api::Factory::forProtocol<NotAProtocol>();
#endif
  return f ? 0 : 1;
}
