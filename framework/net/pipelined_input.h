// PipelinedInputPolicy: what startTLS does with the plaintext that arrived after the trigger and
// before the TLS handshake began (api::PipelinedInput), for any transport that implements
// startTLS. Such bytes are an injection attack in protocols where the client waits for the
// server's go-ahead (CVE-2011-0411, CVE-2021-23222), and the peer's first TLS bytes in others.
//
//   std::string early = PipelinedInputPolicy::takeEarlyInput(*protocol_, held_);
//   protocol_ = tls->wrapForStartTLS(std::move(protocol_), ...);     // the TLS layer goes in
//   PipelinedInputPolicy policy(options.pipelined, {.tlsClient = client, .outgoing = outgoing_});
//   Result<std::string> forTls = policy.apply(std::move(early), peer_);
//   if (!forTls) closeAfterWhatWasWritten(forTls.status());   // kReject: logged, never delivered
//   else if (!forTls->empty()) feedToTlsFirst(*forTls);        // kUseAsTls: ahead of later reads
//
// Decides once per upgrade and keeps nothing: the bytes pass through apply().
#pragma once

#include <string>

#include "framework/api/protocol.h"
#include "framework/api/transport.h"
#include "framework/base/address.h"
#include "framework/base/buffer.h"
#include "framework/base/status.h"

namespace whorl::net {

// Who is who on the connection being upgraded.
struct StartTlsRoles {
  bool tlsClient = false;  // this side will be the TLS client
  bool outgoing = false;   // this side opened the TCP connection
};

class PipelinedInputPolicy {
 public:
  // `asked` is StartTLSOptions::pipelined; kAuto is decided from the roles (api::PipelinedInput).
  PipelinedInputPolicy(api::PipelinedInput asked, StartTlsRoles roles);
  api::PipelinedInput policy() const { return policy_; }

  // Everything received but not yet processed, in the order it arrived: the protocol's own buffer
  // (the rest of the read that held the trigger, lines split but not delivered), then what the
  // transport held back while paused (`held`, left empty).
  static std::string takeEarlyInput(api::Protocol& protocol, ByteBuffer& held);

  // Applies the policy to `early`, logging what it refuses: the bytes to feed to TLS (empty when
  // there were none or they were discarded), or the reason to close the connection (kReject).
  Result<std::string> apply(std::string early, const Address& peer) const;

 private:
  api::PipelinedInput policy_;
};

}  // namespace whorl::net
