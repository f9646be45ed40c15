// FakeTransport and FakeReactor: an in-memory api::Transport for testing protocols without sockets.
//
//   FakeReactor reactor;
//   FakeTransport transport(reactor);
//   MyProtocol p;
//   transport.connect(&p);              // p.makeConnection(&transport)
//   p.dataReceived("hello\r\n");
//   EXPECT_EQ(transport.written(), "...");
//   EXPECT_TRUE(transport.disconnecting());
//
// The fake records every write, counts loseConnection/abortConnection/pause/resume calls and
// never calls back into the protocol on its own (connectionLost is the test's business). The
// reactor keeps callLater/callSoon callbacks until runSoon()/advance() runs them. The test owns
// all three objects; the transport does not own the protocol.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "framework/api/protocol.h"
#include "framework/api/reactor.h"
#include "framework/api/transport.h"
#include "framework/base/address.h"

namespace whorl::test {

class FakeReactor final : public api::Reactor {
 public:
  api::DelayedCall callLater(Clock::duration delay, Callback fn) override {
    uint64_t id = nextId_++;
    timers_.emplace(id, Timer{now_ + delay, std::move(fn)});
    return api::DelayedCall(this, id);
  }
  void callSoon(Callback fn) override { soon_.push_back(std::move(fn)); }
  void stop() override { ++stopCalls_; }
  Clock::time_point now() const override { return now_; }

  // Runs the callSoon queue, including callbacks added meanwhile. True if anything ran.
  bool runSoon() {
    bool ran = false;
    while (!soon_.empty()) {
      auto batch = std::move(soon_);
      soon_.clear();
      for (auto& fn : batch) fn();
      ran = true;
    }
    return ran;
  }
  // Moves the clock forward and runs the timers that became due, in deadline order.
  void advance(Clock::duration by) {
    now_ += by;
    for (;;) {
      auto due = timers_.end();
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.when <= now_ &&
            (due == timers_.end() || it->second.when < due->second.when)) {
          due = it;
        }
      }
      if (due == timers_.end()) break;
      Callback fn = std::move(due->second.fn);
      timers_.erase(due);
      fn();
    }
  }
  size_t pendingTimers() const { return timers_.size(); }
  size_t pendingSoon() const { return soon_.size(); }
  int stopCalls() const { return stopCalls_; }

 protected:
  void cancelCall(uint64_t id) override { timers_.erase(id); }
  bool callActive(uint64_t id) const override { return timers_.count(id) != 0; }

 private:
  struct Timer {
    Clock::time_point when;
    Callback fn;
  };
  Clock::time_point now_{};
  uint64_t nextId_ = 1;
  std::map<uint64_t, Timer> timers_;
  std::vector<Callback> soon_;
  int stopCalls_ = 0;
};

class FakeTransport final : public api::Transport {
 public:
  explicit FakeTransport(api::Reactor& reactor) : reactor_(reactor) {}

  // Attaches `protocol` (calls its connectionMade()).
  void connect(api::Protocol* protocol) { protocol->makeConnection(this); }

  void write(std::string_view data) override {
    written_.append(data);
    writes_.emplace_back(data);
  }
  void loseConnection() override {
    ++loseConnectionCalls_;
    disconnecting_ = true;
  }
  void abortConnection() override {
    ++abortConnectionCalls_;
    disconnecting_ = true;
  }
  Address getPeer() const override { return peer_; }
  Address getHost() const override { return host_; }
  void pauseProducing() override { ++pauseCalls_; }
  void resumeProducing() override { ++resumeCalls_; }
  size_t bufferedBytes() const override { return 0; }
  bool disconnecting() const override { return disconnecting_; }
  api::Reactor& reactor() override { return reactor_; }

  // Everything written, concatenated, and each write() separately.
  const std::string& written() const { return written_; }
  const std::vector<std::string>& writes() const { return writes_; }
  void clearWritten() {
    written_.clear();
    writes_.clear();
  }
  int loseConnectionCalls() const { return loseConnectionCalls_; }
  int abortConnectionCalls() const { return abortConnectionCalls_; }
  int pauseCalls() const { return pauseCalls_; }
  int resumeCalls() const { return resumeCalls_; }

 private:
  api::Reactor& reactor_;
  Address peer_ = Address::loopbackIPv4(40000);
  Address host_ = Address::loopbackIPv4(8000);
  std::string written_;
  std::vector<std::string> writes_;
  int loseConnectionCalls_ = 0;
  int abortConnectionCalls_ = 0;
  int pauseCalls_ = 0;
  int resumeCalls_ = 0;
  bool disconnecting_ = false;
};

}  // namespace whorl::test
