// Protocol and Factory: application code, in Twisted's shape, and ProtocolHandle, the reference
// to a protocol that code outside it (timers, coroutines, other connections) may keep.
//
//   class Echo : public Protocol {
//     void dataReceived(std::string_view data) override { transport()->write(data); }
//   };
//   auto factory = Factory::forProtocol<Echo>();
//   endpoint.listen(factory);
//
//   ProtocolHandle<Echo> echo(this);                  // e.g. in connectionMade
//   reactor.callLater(5s, [echo] { if (Echo* e = echo.get()) e->ping(); });   // null once lost
//   Status why = co_await echo.whenLost();            // ok for a clean close, else the reason
//
// The transport owns the protocol: it is created by the factory for each connection, sees
// connectionMade() once, any number of dataReceived(), stopRequested(deadline) if the runtime
// drains meanwhile, exactly one connectionLost(reason), and is destroyed right after. A
// ProtocolHandle never dangles: get() is null from the moment connectionLost() returns. Handles
// and the protocol live on one shard (no atomics). Factories are shared by all shards:
// buildProtocol() is called concurrently from every shard thread, so a
// factory must be thread-safe (forProtocol() is: it holds only copies of its constructor
// arguments). Per-connection state belongs in the Protocol.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "framework/api/deferred.h"
#include "framework/api/reactor.h"
#include "framework/api/transport.h"
#include "framework/base/address.h"
#include "framework/base/status.h"

namespace whorl::api {

class Factory;
class Protocol;

namespace detail {
// What a Protocol shares with the handles to it; allocated when the first handle is made, so a
// connection nobody holds a handle to pays one pointer.
struct ProtocolLife {
  Protocol* protocol = nullptr;  // null once connectionLost() returned
  int refs = 0;
  bool lost = false;
  Status reason;                          // why, once lost
  std::vector<Deferred<void>> waiters;    // whenLost()
};
}  // namespace detail

class Protocol {
 public:
  virtual ~Protocol();

  virtual void connectionMade() {}
  virtual void dataReceived(std::string_view data) { (void)data; }
  // Exactly once per connection. reason.isCleanClose() for an orderly close.
  virtual void connectionLost(const Status& reason) { (void)reason; }
  // TLS connections only: the handshake finished; the peer's certificate and the negotiated
  // protocol are now known (see Transport). Writes made before this were queued and go out now.
  virtual void handshakeCompleted() {}
  // The runtime started draining (runtime.stop(), SIGTERM): this connection may go on until
  // `deadline`, when the drain closes it (loseConnection(), and a reset a second later if it is
  // still open). Called once, on the connection's shard thread, in the loop turn the drain begins
  // there, for every connection open at that moment: accepted and outgoing, TLS ones too (the TLS
  // layer passes it on, also during the handshake). Not called if loseConnection() or
  // abortConnection() came first, nor for connections made after the drain began. A protocol can
  // send its goodbye here and call loseConnection(): what it wrote goes out before the close.
  virtual void stopRequested(Reactor::Clock::time_point deadline) { (void)deadline; }

  // Flow control (Twisted's IPushProducer, with the transport as consumer): called when more
  // than the high-water mark of written bytes is unsent, and again once it drains below the
  // low-water mark. The default stops and restarts reading, which is right for protocols that
  // write in response to input (echo, request/response). A protocol that writes on its own (a
  // file sender) overrides these and stops writing while paused.
  virtual void pauseProducing() {
    if (transport_ != nullptr) transport_->pauseProducing();
  }
  virtual void resumeProducing() {
    if (transport_ != nullptr) transport_->resumeProducing();
  }

  // Called by transports (instead of connectionLost()): connectionLost(reason), then tells the
  // handles to this protocol that it is gone.
  void deliverConnectionLost(const Status& reason);

  // Called by transports: attaches the transport, then calls connectionMade().
  void makeConnection(Transport* transport) {
    transport_ = transport;
    connectionMade();
  }
  // Called by layers inserted under a live protocol (startTLS): a new transport, no second
  // connectionMade().
  void rebindTransport(Transport* transport) { transport_ = transport; }
  // startTLS asks for input this protocol received but has not processed yet (the rest of the
  // read that held the trigger). Parsers that buffer (LineReceiver) return and forget it.
  virtual std::string takeUnprocessedInput() { return {}; }
  Transport* transport() const { return transport_; }
  Factory* factory() const { return factory_; }

 private:
  friend class Factory;
  template <typename P>
  friend class ProtocolHandle;
  detail::ProtocolLife* life();
  Transport* transport_ = nullptr;
  Factory* factory_ = nullptr;
  detail::ProtocolLife* life_ = nullptr;
};

// A reference to a Protocol that says when its connection is gone instead of dangling. Copyable;
// use it on the protocol's shard only.
template <typename P = Protocol>
class ProtocolHandle {
 public:
  ProtocolHandle() = default;
  // `protocol` must be alive (typically `this`, or what a connect gave).
  explicit ProtocolHandle(P* protocol) {
    if (protocol != nullptr) attach(static_cast<Protocol*>(protocol)->life());
  }
  ProtocolHandle(const ProtocolHandle& o) { attach(o.life_); }
  ProtocolHandle(ProtocolHandle&& o) noexcept : life_(std::exchange(o.life_, nullptr)) {}
  template <typename Q, typename = std::enable_if_t<std::is_convertible_v<Q*, P*>>>
  ProtocolHandle(const ProtocolHandle<Q>& o) {  // NOLINT: derived to base, like pointers
    attach(o.life_);
  }
  ProtocolHandle& operator=(ProtocolHandle o) noexcept {
    std::swap(life_, o.life_);
    return *this;
  }
  ~ProtocolHandle() { detach(); }

  // The protocol, or null once its connectionLost() has returned.
  P* get() const {
    return life_ != nullptr && life_->protocol != nullptr ? static_cast<P*>(life_->protocol)
                                                          : nullptr;
  }
  // The protocol; aborts with a message if its connection is gone (check get() where that can
  // happen).
  P* operator->() const { return checked(); }
  P& operator*() const { return *checked(); }
  explicit operator bool() const { return get() != nullptr; }
  // True once the connection was lost (false for an empty handle).
  bool lost() const { return life_ != nullptr && life_->lost; }
  // Fires after connectionLost(): ok for a clean close, else with the reason. At once if lost.
  Deferred<void> whenLost() const {
    if (life_ == nullptr) return fail(Status::invalidArgument("whenLost() on an empty ProtocolHandle"));
    if (life_->lost) {
      if (life_->reason.isCleanClose()) return succeed();
      return fail(life_->reason);
    }
    Deferred<void> d;
    life_->waiters.push_back(d);
    return d;
  }
  // A handle to the same protocol as a derived type (the caller knows what it built).
  template <typename Q>
  ProtocolHandle<Q> as() const {
    ProtocolHandle<Q> h;
    h.attach(life_);
    return h;
  }

 private:
  template <typename Q>
  friend class ProtocolHandle;
  void attach(detail::ProtocolLife* life) {
    life_ = life;
    if (life_ != nullptr) ++life_->refs;
  }
  void detach() {
    if (life_ != nullptr && --life_->refs == 0) delete life_;
    life_ = nullptr;
  }
  P* checked() const {
    P* p = get();
    if (p == nullptr) protocolGone(life_ == nullptr);
    return p;
  }
  [[noreturn]] static void protocolGone(bool empty);

  detail::ProtocolLife* life_ = nullptr;
};

namespace detail {
[[noreturn]] void protocolHandleFatal(bool empty);
}
template <typename P>
void ProtocolHandle<P>::protocolGone(bool empty) {
  detail::protocolHandleFatal(empty);
}

class Factory {
 public:
  virtual ~Factory() = default;

  // A new protocol for a connection with `peer`, or nullptr to refuse it (it is closed).
  virtual std::unique_ptr<Protocol> buildProtocol(const Address& peer) = 0;

  // The runtime started draining and a listener of this factory stopped accepting; its open
  // connections have until `deadline` (see Protocol::stopRequested). Called on each shard's thread,
  // once per shard for every port listening with this factory (N shards: N calls, concurrently
  // from N threads, so keep it thread-safe like buildProtocol()), in the same loop turn as that
  // shard's connections are told, in no set order between them. Factories that wrap another
  // (TLS) pass it on. Not called for ports stopped before the drain, nor for connecting factories.
  virtual void stopRequested(Reactor::Clock::time_point deadline) { (void)deadline; }

  // buildProtocol() plus setting protocol->factory(); what transports call.
  std::unique_ptr<Protocol> build(const Address& peer) {
    auto p = buildProtocol(peer);
    if (p) p->factory_ = this;
    return p;
  }

  // A factory that builds P(args...) for every connection. It keeps copies of `args` and calls
  // P's constructor with them (as const references) each time: P must derive from Protocol and
  // have such a constructor, else compiling names both in words.
  template <typename P, typename... Args>
  static std::shared_ptr<Factory> forProtocol(Args... args);
};

namespace detail {
// forProtocol<P>(args...)'s checks: a failing one prints this template with P and Args spelled
// out ("ForProtocolCheck<Chat, int, const char*>") above the message.
template <typename P, typename... Args>
struct ForProtocolCheck {
  static constexpr bool isProtocol = std::is_base_of_v<Protocol, P>;
  static_assert(isProtocol,
                "Factory::forProtocol<P>(args...): P does not derive from whorl::api::Protocol");
  static constexpr bool constructible = std::is_constructible_v<P, const Args&...>;
  static_assert(!isProtocol || constructible,
                "Factory::forProtocol<P>(args...): P is not constructible from the given arguments "
                "(no constructor P(const Args&...) for the types Args of this check; the "
                "arguments are copied, so a string literal arrives as const char*)");
  static constexpr bool value = isProtocol && constructible;
};

template <typename P, typename... Args>
class ProtocolFactory final : public Factory {
 public:
  explicit ProtocolFactory(Args... args) : args_(std::move(args)...) {}
  std::unique_ptr<Protocol> buildProtocol(const Address&) override {
    return std::apply([](const Args&... a) { return std::make_unique<P>(a...); }, args_);
  }

 private:
  std::tuple<Args...> args_;
};
}  // namespace detail

template <typename P, typename... Args>
std::shared_ptr<Factory> Factory::forProtocol(Args... args) {
  if constexpr (detail::ForProtocolCheck<P, Args...>::value) {
    return std::make_shared<detail::ProtocolFactory<P, Args...>>(std::move(args)...);
  } else {
    return nullptr;  // not reached: the check above failed to compile (and said why)
  }
}

}  // namespace whorl::api
