// Transport: the connection a Protocol writes to (Twisted's ITransport + IPushProducer).
//
//   void Echo::dataReceived(std::string_view data) { transport()->write(data); }
//   transport()->loseConnection();   // flush what was written, then close
//   transport()->abortConnection();  // close now, drop unsent bytes
//
// Writes are buffered and sent once per loop turn. When more than the high-water mark is unsent,
// the protocol's pauseProducing() is called; resumeProducing() follows below the low-water mark
// (see Protocol). pauseProducing()/resumeProducing() on the transport stop and restart delivery
// of dataReceived. The transport owns its Protocol; both live on one shard and are freed after
// connectionLost() returns. A Transport* is valid from connectionMade() to connectionLost().
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>

#include <memory>
#include <optional>
#include <string>

#include "framework/api/reactor.h"
#include "framework/base/address.h"

// OpenSSL's certificate type, named without including OpenSSL (Twisted's transports hand out
// the OpenSSL object too; wrap it as tls::Certificate).
typedef struct x509_st X509;

namespace whorl::api {

class Transport {
 public:
  virtual ~Transport() = default;

  virtual void write(std::string_view data) = 0;
  virtual void writeSequence(std::span<const std::string_view> parts) {
    for (auto p : parts) write(p);
  }
  void writeSequence(std::initializer_list<std::string_view> parts) {
    writeSequence(std::span<const std::string_view>(parts.begin(), parts.size()));
  }
  // Sends everything written so far, then closes; connectionLost gets a clean-close reason.
  virtual void loseConnection() = 0;
  // Closes at once (TCP RST), dropping unsent bytes; connectionLost gets kAborted.
  virtual void abortConnection() = 0;
  virtual Address getPeer() const = 0;
  virtual Address getHost() const = 0;

  // Stop / restart calling the protocol's dataReceived (reads are held back, so the peer's sends
  // eventually block: back-pressure). Bytes already received are kept, not lost.
  virtual void pauseProducing() = 0;
  virtual void resumeProducing() = 0;

  // Bytes written but not yet accepted by the kernel (or the layer below).
  virtual size_t bufferedBytes() const = 0;
  // True once loseConnection/abortConnection was called or the connection is going away.
  virtual bool disconnecting() const = 0;
  // The event loop this transport lives on.
  virtual Reactor& reactor() = 0;

  // TLS (Twisted's ISSLTransport). Plain transports answer "not TLS".
  virtual bool isTLS() const { return false; }
  // The peer's certificate once the handshake completed (null if none): tls::Certificate(it).
  virtual std::shared_ptr<X509> getPeerCertificate() const { return nullptr; }
  // The ALPN result, else the NPN result, else none.
  virtual std::optional<std::string> negotiatedProtocol() const { return std::nullopt; }
  virtual std::string tlsVersion() const { return {}; }  // "TLSv1.3"
  virtual std::string cipher() const { return {}; }      // "TLS_AES_128_GCM_SHA256"
  virtual bool sessionResumed() const { return false; }
};

}  // namespace whorl::api
