#include "framework/net/pipelined_input.h"

#include "framework/base/log.h"

namespace whorl::net {

PipelinedInputPolicy::PipelinedInputPolicy(api::PipelinedInput asked, StartTlsRoles roles)
    : policy_(asked) {
  if (policy_ != api::PipelinedInput::kAuto) return;
  // The TCP client sends the trigger and the TCP server the go-ahead. Bytes behind the trigger
  // (TCP server) were sent before the peer saw the go-ahead: reject them. Bytes behind the
  // go-ahead (TCP client) are discarded, except with reversed roles (normal=false), where the
  // TCP server is the TLS client and its ClientHello follows its go-ahead at once.
  if (roles.tlsClient) {
    policy_ = api::PipelinedInput::kDiscard;
  } else {
    policy_ = roles.outgoing ? api::PipelinedInput::kUseAsTls : api::PipelinedInput::kReject;
  }
}

std::string PipelinedInputPolicy::takeEarlyInput(api::Protocol& protocol, ByteBuffer& held) {
  std::string early = protocol.takeUnprocessedInput();
  if (!held.empty()) {
    early.append(held.view());
    held.clear();
  }
  return early;
}

Result<std::string> PipelinedInputPolicy::apply(std::string early, const Address& peer) const {
  if (early.empty()) return early;
  switch (policy_) {
    case api::PipelinedInput::kReject:
      WHORL_LOG(kWarning,
                "closing %s: %zu bytes of plaintext arrived after STARTTLS, before the TLS "
                "handshake (possible command injection, CVE-2011-0411)",
                peer.toString().c_str(), early.size());
      return Status(Status::Code::kTls,
                    "plaintext pipelined after STARTTLS before the TLS handshake (" +
                        std::to_string(early.size()) +
                        " bytes; possible command injection, CVE-2011-0411)");
    case api::PipelinedInput::kDiscard:
      WHORL_LOG(kWarning,
                "%s: discarded %zu bytes received after STARTTLS before the TLS handshake "
                "(possible injection, CVE-2021-23222 class)",
                peer.toString().c_str(), early.size());
      return std::string();
    case api::PipelinedInput::kUseAsTls:
    case api::PipelinedInput::kAuto:
      break;
  }
  return early;
}

}  // namespace whorl::net
