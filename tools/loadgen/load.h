// The load itself: connection slots driven on whorl's shards.
//
//   LoadPlan plan = ...;                          // built once on the main thread, then read-only
//   ShardLoad load(plan, runtime.shard(0), tlsContext, {0, 2, 4}, onFinished);
//   runtime.shard(0).post([&] { load.start(); });
//   ... runtime.run() returns once every ShardLoad called onFinished and the runtime stopped ...
//   total.merge(load.stats());
//
// A ShardLoad owns its connection slots, their buffers and its statistics; it lives on one shard
// and is touched only from that shard's thread until the runtime has been joined. Each slot keeps
// one connection (echo, http: kept alive and re-opened when lost; handshake: a new one per
// request) and survives its connections: the protocol objects, owned by their transports, only
// forward events to the slot and are detached from it when the slot lets them go.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/api/protocol.h"
#include "framework/base/address.h"
#include "framework/net/connector.h"
#include "framework/reactor/shard.h"
#include "framework/tls/options.h"
#include "tools/loadgen/options.h"
#include "tools/loadgen/report.h"
#include "tools/loadgen/server_cpu.h"

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

namespace whorl::loadgen {

using Clock = std::chrono::steady_clock;

// Everything the shards share, fixed before they start.
struct LoadPlan {
  LoadOptions options;
  std::vector<Address> addresses;  // the target, resolved once
  std::string httpRequest;         // the GET, built once
  // Echo payloads: message k of a connection is pattern[(seed + k * size) % kPatternPeriod ...],
  // so every byte of the stream is known and a shifted or mixed-up echo shows.
  static constexpr size_t kPatternPeriod = 65521;  // prime: messages rarely repeat their window
  std::string echoPattern;                         // kPatternPeriod + size bytes
  Clock::duration interval{};                      // open loop: between a connection's requests
  Clock::time_point start;                         // load starts
  Clock::time_point measureFrom;                   // start + warm-up
  Clock::time_point measureUntil;                  // measureFrom + duration (a late start shifts it)
  WindowSampler* serverCpu = nullptr;              // --server-pid: sampled at the window's edges
};

class Slot;

class ShardLoad {
 public:
  // `slotIds`: the global connection numbers this shard drives (they stagger the open-loop
  // schedule). `tls`: this shard's client context (null for plain TCP); one per shard, so the
  // session cache is not shared across threads. `onFinished` runs on the shard thread when the
  // load has ended there.
  ShardLoad(const LoadPlan& plan, reactor::Shard& shard, std::shared_ptr<tls::TlsContext> tls,
            const std::vector<int>& slotIds, std::function<void()> onFinished);
  ~ShardLoad();
  ShardLoad(const ShardLoad&) = delete;
  ShardLoad& operator=(const ShardLoad&) = delete;

  // Shard thread: opens the connections and arms the warm-up and end timers.
  void start();

  // After the runtime has been joined.
  const LoadStats& stats() const { return stats_; }
  bool measured() const { return measureStarted_; }
  Clock::time_point measureStart() const { return measureStart_; }
  Clock::time_point measureEnd() const { return measureEnd_; }  // epoch if the run was interrupted
  uint64_t wireInAtStart() const { return wireIn0_; }
  uint64_t wireOutAtStart() const { return wireOut0_; }
  // Session tickets: how many arrived, and whether waiting for one was given up.
  uint64_t ticketsSeen() const { return ticketsSeen_; }
  bool ticketsGivenUp() const { return ticketsGivenUp_; }
  uint64_t lateSends() const { return lateSends_; }
  bool ended() const { return ended_; }
  // The first error of each kind, in words (for the report's notes).
  const std::vector<std::string>& firstErrors() const { return firstErrors_; }

 private:
  friend class Slot;

  bool measuring() const { return measuring_; }
  void noteError(ErrorKind kind, const std::string& why);
  void preferAddress(const Address& peer);
  bool over() const { return ended_ || shard_.stopping(); }
  void beginMeasuring();
  void end();
  // Open loop: wake `slot` at `due` (one shard timer for the earliest due slot).
  void wakeAt(Slot* slot, Clock::time_point due);
  void onWakeTimer();
  void armWakeTimer(Clock::time_point due);
  // Periodic: request timeouts and abandoned waits for session tickets.
  void scan();
  // Session tickets (handshake mode without a request, with --resume).
  void waitForTicket(Slot* slot);
  void onTicket();
  void releaseTicketWaiters(bool timedOut);
  static int newSessionHook(SSL* ssl, SSL_SESSION* session);

  const LoadPlan& plan_;
  reactor::Shard& shard_;
  std::shared_ptr<tls::TlsContext> tls_;
  std::function<void()> onFinished_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<Address> addresses_;  // the target's addresses, the one that works first
  net::ConnectOptions connectOptions_;
  LoadStats stats_;

  bool measuring_ = false;
  bool measureStarted_ = false;
  bool ended_ = false;
  Clock::time_point measureStart_{};
  Clock::time_point measureEnd_{};
  uint64_t wireIn0_ = 0;
  uint64_t wireOut0_ = 0;
  uint64_t lateSends_ = 0;
  std::vector<std::string> firstErrors_;  // indexed by ErrorKind
  api::DelayedCall warmupTimer_;
  api::DelayedCall endTimer_;
  api::DelayedCall scanTimer_;

  // Open-loop wake-ups: a min-heap of (due, slot), each slot at most once.
  std::vector<std::pair<Clock::time_point, Slot*>> wakeHeap_;
  api::DelayedCall wakeTimer_;
  Clock::time_point wakeArmedAt_ = Clock::time_point::max();

  // Session tickets.
  int (*originalNewSession_)(SSL*, SSL_SESSION*) = nullptr;
  std::vector<Slot*> ticketWaiters_;
  std::vector<Slot*> ticketScratch_;
  bool ticketReleaseQueued_ = false;
  uint64_t ticketsSeen_ = 0;
  bool ticketsGivenUp_ = false;
};

}  // namespace whorl::loadgen
