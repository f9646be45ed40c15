// Endpoint descriptions: Twisted's strports strings ("tcp:8000") turned into endpoints.
//
//   auto server = serverFromString(runtime, "tcp:port=8000:interface=127.0.0.1");
//   if (!server) { std::fprintf(stderr, "%s\n", server.status().message().c_str()); return 2; }
//   auto port = (*server)->listen(Factory::forProtocol<Echo>());
//
//   auto client = clientFromString(runtime.shard(0), "tcp:host=localhost:port=8000:timeout=2.5");
//   (*client)->connect(Factory::forProtocol<EchoClient>(), [](Result<Protocol*> p) { ... });
//
// Syntax (as Twisted's): fields separated by ':'; the first is the endpoint type, the rest are
// positional arguments or key=value arguments, in any order. A backslash takes the next character
// literally, so "tcp6:8000:interface=\:\:1" listens on ::1 (in C++ source: "...=\\:\\:1"). Only
// the first unescaped '=' of a field separates key from value.
//
// Server types:
//   tcp:PORT[:interface=ADDR][:backlog=N]    TCP4ServerEndpoint (interface: an IPv4 literal)
//   tcp6:PORT[:interface=ADDR][:backlog=N]   TCP6ServerEndpoint (interface: an IPv6 literal)
//   ssl:PORT:privateKey=FILE[:certKey=FILE][:extraCertChain=FILE][:dhParameters=FILE]
//       [:interface=ADDR][:backlog=N][:caCerts=PATH][:tlsMinimum=V][:tlsMaximum=V][:ktls=M]
//       [:alpn=P1,P2]
//                                            SSL4ServerEndpoint. privateKey may hold the
//                                            certificate too (certKey defaults to it); caCerts
//                                            (file or directory) requires client certificates;
//                                            V is TLSv1_2, 1.3, ...; M is auto (default),
//                                            off or require (kernel TLS); alpn lists the
//                                            ALPN/NPN protocols in preference order
// Client types:
//   tcp:host=HOST:port=PORT[:timeout=SECONDS] HostnameEndpoint: HOST is a name or literal and
//                                             every address it resolves to is tried (IPv4 and
//                                             IPv6); the timeout may be fractional.
//   tls:HOST:PORT[:trustRoots=PATH][:certificate=FILE][:privateKey=FILE][:timeout=SECONDS][:ktls=M]
//                                             SSL4ClientEndpoint verifying HOST against
//                                             trustRoots (default: the system store).
// Arguments may also be given positionally in the order shown ("tcp:localhost:8000").
//
// Malformed strings give Status::invalidArgument naming the bad part and quoting the whole string.
// The functions return new endpoints owned by the caller; a server endpoint keeps a reference to
// `runtime` and a client endpoint to `shard`, which must outlive them. Parsing is thread-safe and
// changes nothing, but it is not pure for ssl: it reads the files the description names (each
// once) and builds the TLS context, because only OpenSSL can judge some options (a key too small
// for its security level) and errors belong here, not at listen().
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/base/status.h"
#include "framework/endpoint/endpoint.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/options.h"

namespace whorl::endpoint {

// A parsed description with escapes resolved: "tcp:8000:interface=\:\:1" is
// {type "tcp", args {"8000"}, kwargs {{"interface", "::1"}}}.
struct Description {
  std::string type;
  std::vector<std::string> args;                            // positional, in order
  std::vector<std::pair<std::string, std::string>> kwargs;  // key=value, in order, unique keys

  // The value of `key`, or nullptr when it was not given.
  const std::string* kwarg(std::string_view key) const;
};

// Splits a description into type, positional and keyword arguments. Errors: empty string,
// missing type, trailing backslash, empty or duplicate key.
Result<Description> parseDescription(std::string_view text);

// A server description resolved into its parts, for programs that assemble the listening stack
// themselves (the echo service adds PROXY protocol, connection limits and certificate reload).
// For ssl: the TLS context built to check the options is dropped, since the caller may still
// change them; serverFromSpec (or the caller) builds the one that serves. serverFromString keeps
// the checked context and builds no second one.
struct ServerSpec {
  std::string description;  // the text it came from
  int family = AF_INET;
  uint16_t port = 0;
  TcpServerOptions tcp;
  std::optional<tls::CertificateOptions> tls;  // set for ssl:
};
Result<ServerSpec> serverSpecFromString(std::string_view description);

// A server endpoint on `runtime` (listens on every shard) for "tcp:...", "tcp6:..." or "ssl:...".
Result<std::unique_ptr<ServerEndpoint>> serverFromString(reactor::Runtime& runtime,
                                                         std::string_view description);
std::unique_ptr<ServerEndpoint> serverFromSpec(reactor::Runtime& runtime, ServerSpec spec);

// A client endpoint connecting from `shard` for "tcp:...": always a HostnameEndpoint.
Result<std::unique_ptr<ClientEndpoint>> clientFromString(reactor::Shard& shard,
                                                         std::string_view description);

}  // namespace whorl::endpoint
