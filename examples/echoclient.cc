// echoclient: the C++ counterpart of Twisted's echoclient.py.
//
//   bazel run //examples:echoclient -- --host localhost --port 8000
//   receive: Hello, world!
//   receive: What a fine day it is.
//   receive: Bye-bye!
#include <cstdio>

#include "examples/echo_protocols.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/endpoint.h"
#include "framework/reactor/runtime.h"

using namespace whorl;

int main(int argc, char** argv) {
  int port = 8000;
  std::string host = "localhost";
  Flags flags("echoclient", "Sends three lines to an echo server and prints what comes back.");
  flags.add("host", &host, "server host name or address");
  flags.add("port", &port, "server TCP port");
  flags.parseOrExit(argc, argv);
  log::setLevel(log::Level::kWarning);

  int exitCode = 0;
  reactor::RuntimeOptions ro;
  ro.shards = 1;
  reactor::Runtime runtime(ro);
  endpoint::HostnameEndpoint endpoint(runtime.shard(0), host, static_cast<uint16_t>(port));
  endpoint.connect(api::Factory::forProtocol<examples::EchoClient>(&exitCode),
                   [&](Result<api::Protocol*> p) {
                     if (!p) {
                       std::printf("connection failed: %s\n", p.status().message().c_str());
                       exitCode = 1;
                       runtime.stop();
                     }
                   });
  runtime.run();
  return exitCode;
}
