// TimeoutMixin: closes a connection that stays idle too long (Twisted's
// twisted.protocols.policies.TimeoutMixin).
//
//   class Chat : public TimeoutMixin<LineReceiver> {
//     void connectionMade() override { setTimeout(std::chrono::seconds(30)); }
//     void lineReceived(std::string_view line) override {
//       resetTimeout();  // activity: the 30 s start again
//       sendLine(line);
//     }
//   };
//
// setTimeout(period) starts the count (zero turns it off) and returns the previous period;
// resetTimeout() marks activity; once `period` passes without any, timeoutConnection() runs. Its
// default logs why ("closing connection from 203.0.113.7:5123: idle timeout, no activity for
// 30 s") and calls loseConnection(), so what was written still goes out; override it to do
// something else (warn the peer, setTimeout() again). Afterwards timedOut() is true, so that
// connectionLost() can name the cause (its reason is the transport's: a clean close).
//
// Cheap on the data path: resetTimeout() only stores the time. One callLater is pending per
// connection; when it fires after activity, it re-arms itself for the time that is left. The
// timer never outlives the protocol: connectionLost() and the destructor cancel it (a subclass
// that overrides connectionLost() should call TimeoutMixin::connectionLost(reason) too, to stop
// it as early as the connection is lost). setTimeout() needs the transport's reactor: call it
// from connectionMade() or later (called earlier, it keeps the period and the count starts at
// the first resetTimeout()). Shard thread only, like the protocol itself. Owns nothing but its
// timer.
#pragma once

#include <chrono>
#include <cstdint>

#include "framework/api/protocol.h"
#include "framework/api/reactor.h"
#include "framework/api/transport.h"
#include "framework/base/status.h"

namespace whorl::api {

namespace detail {
// The default timeoutConnection(): logs the reason and closes the connection.
void closeIdleConnection(Transport* transport, Reactor::Clock::duration period);
}  // namespace detail

template <class Base = Protocol>
class TimeoutMixin : public Base {
 public:
  using Duration = Reactor::Clock::duration;

  TimeoutMixin() = default;
  using Base::Base;
  TimeoutMixin(const TimeoutMixin&) = delete;  // the timer's callback holds `this`
  TimeoutMixin& operator=(const TimeoutMixin&) = delete;
  ~TimeoutMixin() override { timer_.cancel(); }

  // Counts `period` from now (zero or less: no timeout) and returns the previous period.
  Duration setTimeout(Duration period) {
    Duration previous = period_;
    period_ = period.count() > 0 ? period : Duration::zero();
    timer_.cancel();
    state_ = State::kOff;
    if (period_.count() > 0) {
      if (Base::transport() == nullptr) {
        state_ = State::kNotConnected;
      } else {
        start();
      }
    }
    return previous;
  }
  // Activity: the period starts again from now. Costs one clock read, no timer work.
  void resetTimeout() {
    if (state_ == State::kArmed) {
      lastActivity_ = Base::transport()->reactor().now();
    } else if (state_ == State::kNotConnected && Base::transport() != nullptr) {
      start();
    }
  }
  // The period set by setTimeout() (zero: none).
  Duration timeout() const { return period_; }
  // True once the timeout expired (timeoutConnection() ran), until the next setTimeout().
  bool timedOut() const { return state_ == State::kTimedOut; }

  // The period passed without activity. Default: log the reason and loseConnection().
  virtual void timeoutConnection() { detail::closeIdleConnection(Base::transport(), period_); }

  void connectionLost(const Status& reason) override {
    timer_.cancel();
    if (state_ != State::kTimedOut) state_ = State::kOff;
    Base::connectionLost(reason);
  }

 private:
  enum class State : uint8_t {
    kOff,           // no timeout set, or connectionLost()
    kNotConnected,  // set before there was a transport: starts at the first resetTimeout()
    kArmed,         // counting: timer_ is pending
    kTimedOut,      // expired: timeoutConnection() ran
  };

  void start() {
    state_ = State::kArmed;
    lastActivity_ = Base::transport()->reactor().now();
    arm(period_);
  }
  void arm(Duration delay) {
    timer_ = Base::transport()->reactor().callLater(delay, [this] { onTimer(); });
  }
  void onTimer() {
    timer_ = DelayedCall();
    Duration idle = Base::transport()->reactor().now() - lastActivity_;
    if (idle < period_) {
      arm(period_ - idle);  // there was activity meanwhile: wait for the rest
      return;
    }
    state_ = State::kTimedOut;
    timeoutConnection();
  }

  DelayedCall timer_;
  Reactor::Clock::time_point lastActivity_{};
  Duration period_{0};
  State state_ = State::kOff;
};

}  // namespace whorl::api
