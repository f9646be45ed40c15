// whorl.h: whorl's public API in one include, for code that depends on //:whorl (@whorl//:whorl
// from another workspace).
//
//   #include "framework/whorl.h"
//   using namespace whorl;
//   class Echo : public api::Protocol {
//     void dataReceived(std::string_view data) override { transport()->write(data); }
//   };
//   auto cert = tls::PrivateCertificate::loadPEMFile("server.pem");   // Result<...>: check it
//   reactor::Runtime runtime;                                          // one shard per CPU
//   if (!runtime.start().isOk()) return 1;
//   auto port = endpoint::listenSSL(runtime, 8443, api::Factory::forProtocol<Echo>(),
//                                   cert->options());                 // Result<...>: check it
//   return runtime.run();                                              // until SIGINT/SIGTERM
//
// It owns nothing and declares nothing: it includes the public headers of each module, grouped by
// module. Adding a public header to a module is one #include line in that module's group (keep
// each group sorted). The lower layers (framework/net, framework/uring, reactor/shard.h,
// tls/session.h, ...) are in the same target and are included by their own paths when needed.
#pragma once

#if __cplusplus < 202002L
#error "whorl needs C++20: add the line 'build --cxxopt=-std=c++20' to your .bazelrc"
#endif

// api: Protocol, Factory, Transport (startTLS), Reactor (callLater), LineReceiver, Deferred and
// coroutines, ProtocolHandle, TimeoutMixin.
#include "framework/api/deferred.h"
#include "framework/api/line_receiver.h"
#include "framework/api/protocol.h"
#include "framework/api/reactor.h"
#include "framework/api/timeout_mixin.h"
#include "framework/api/transport.h"

// base: Status and Result<T>, ByteBuffer, Address, logging, Flags, sd_notify.
#include "framework/base/address.h"
#include "framework/base/buffer.h"
#include "framework/base/files.h"
#include "framework/base/flags.h"
#include "framework/base/log.h"
#include "framework/base/status.h"
#include "framework/base/systemd.h"

// http: the HTTP/1.1 request parser, response heads, RequestReceiver (a Protocol serving
// requests), the character classes.
#include "framework/http/request_parser.h"
#include "framework/http/request_receiver.h"
#include "framework/http/response.h"
#include "framework/http/syntax.h"

// reactor: Runtime (N shards, signals, drain), Shard (the reactor a program's main gets),
// react(main), Sharded<T>.
#include "framework/reactor/react.h"
#include "framework/reactor/runtime.h"
#include "framework/reactor/shard.h"
#include "framework/reactor/sharded.h"

// endpoint: TCP and TLS endpoints, listenSSL/connectSSL, serverFromString/clientFromString.
#include "framework/endpoint/description.h"
#include "framework/endpoint/endpoint.h"
#include "framework/endpoint/tls_endpoint.h"

// tls: certificates and trust roots, CertificateOptions/optionsForClientTLS, TLS over any
// transport, shared session ticket keys.
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "framework/tls/ticket_keys.h"
#include "framework/tls/tls_layer.h"

// metrics: Prometheus counters and gauges, and the HTTP protocol that serves them.
#include "framework/metrics/metrics.h"
#include "framework/metrics/metrics_http.h"

// The names a program uses, also directly in namespace whorl, so that after
// `using namespace whorl;` a program reads like Twisted's (Protocol, Deferred, react,
// SSL4ClientEndpoint, ...). The module-qualified names (api::Protocol, ...) stay valid; certificate
// and option types keep their tls:: prefix, as Twisted's keep ssl.
namespace whorl {
using api::Deferred;
using api::DelayedCall;
using api::Factory;
using api::LineReceiver;
using api::Protocol;
using api::ProtocolHandle;
using api::TimeoutMixin;
using api::Transport;
using api::deferLater;
using api::fail;
using api::gatherResults;
using api::succeed;
using endpoint::ClientEndpoint;
using endpoint::connectProtocol;
using endpoint::HostnameEndpoint;
using endpoint::ListeningPort;
using endpoint::listenSSL;
using endpoint::SSL4ClientEndpoint;
using endpoint::SSL4ServerEndpoint;
using endpoint::TCP4ClientEndpoint;
using endpoint::TCP4ServerEndpoint;
using endpoint::TCP6ServerEndpoint;
using endpoint::TcpClientOptions;
using endpoint::TcpServerOptions;
using reactor::react;
using reactor::ReactOptions;
using reactor::Runtime;
using reactor::RuntimeOptions;
using reactor::Shard;
using reactor::Sharded;
}  // namespace whorl
