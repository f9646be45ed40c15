// echoclient: the C++ counterpart of Twisted's echoclient.py.
//
//   bazel run //examples:echoclient -- --host localhost --port 8000
//   receive: Hello, world!
//   receive: What a fine day it is.
//   receive: Bye-bye!
#include "examples/echo_protocols.h"

using namespace whorl;

int main(int argc, char** argv) {
  Flags flags("echoclient", "Sends three lines to an echo server and prints what comes back.");
  auto& host = flags.add("host", "localhost", "server host name or address");
  auto& port = flags.add("port", 8000, "server TCP port");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);
  return react([&](Shard& reactor) -> Deferred<int> {
    Deferred<int> done;
    auto client = co_await connectProtocol<examples::EchoClient>(HostnameEndpoint(reactor, host, port), done);
    if (!client) {
      std::printf("connection failed: %s\n", client.status().message().c_str());
      co_return 1;
    }
    co_return co_await done;
  });
}
