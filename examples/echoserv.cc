// echoserv: the C++ counterpart of Twisted's echoserv.py, on every core.
//
//   bazel run //examples:echoserv -- --port 8000 --shards 2
#include <cstdio>

#include "examples/echo_protocols.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/endpoint/endpoint.h"
#include "framework/reactor/runtime.h"

using namespace whorl;

int main(int argc, char** argv) {
  int port = 8000;
  int shards = 0;
  std::string interface;
  double drain = 10;
  Flags flags("echoserv", "TCP echo server: writes back every byte it receives.");
  flags.add("port", &port, "TCP port to listen on");
  flags.add("interface", &interface, "address to listen on (default: all IPv4 interfaces)");
  flags.add("shards", &shards, "reactor threads; 0 means one per online CPU");
  flags.add("drain-timeout", &drain, "seconds open connections get to finish on SIGINT/SIGTERM");
  flags.parseOrExit(argc, argv);

  reactor::RuntimeOptions ro;
  ro.shards = shards;
  ro.drainTimeout = std::chrono::milliseconds(static_cast<long>(drain * 1000));
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "echoserv: %s\n", s.message().c_str());
    return 1;
  }
  endpoint::TcpServerOptions so;
  so.interface = interface;
  endpoint::TCP4ServerEndpoint server(runtime, static_cast<uint16_t>(port), so);
  auto listening = server.listen(api::Factory::forProtocol<examples::Echo>());
  if (!listening) {
    std::fprintf(stderr, "echoserv: %s\n", listening.status().message().c_str());
    return 1;
  }
  WHORL_LOG(kInfo, "echo server listening on %s with %d shard%s; stop with Ctrl-C (SIGINT) or SIGTERM",
            (*listening)->getHost().toString().c_str(), runtime.shardCount(),
            runtime.shardCount() == 1 ? "" : "s");
  return runtime.run();
}
