#include "tools/loadgen/load.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>

#include "framework/base/log.h"
#include "framework/tls/tls_layer.h"
#include "tools/loadgen/http_response.h"

namespace whorl::loadgen {

namespace {

// Open loop: a request due this close to now goes out now (its latency counts from the earlier
// of the two times), which batches wake-ups without measuring from a later start.
constexpr Clock::duration kEarlySlack = std::chrono::microseconds(50);
// A request sent this long after its scheduled time counts as late (reported in a note).
constexpr Clock::duration kLate = std::chrono::milliseconds(1);
// How long a handshake-mode connection stays open for the server's session ticket (TLS 1.3 sends
// it after the handshake) when nothing else will read it.
constexpr Clock::duration kTicketWait = std::chrono::milliseconds(250);
// Until the first ticket arrives the shard waits this long before deciding that the server sends
// none: a slow server (a sanitizer build, a loaded host) sends its first ticket seconds late, and
// giving up early makes every later resumed handshake fail.
constexpr Clock::duration kFirstTicketWait = std::chrono::seconds(5);

uint64_t micros(Clock::duration d) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return ns <= 0 ? 0 : static_cast<uint64_t>(ns + 500) / 1000;
}

int sslIndex() {
  static int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The protocol on each connection: forwards to its slot until the slot lets it go.

class LoadProtocol final : public api::Protocol {
 public:
  explicit LoadProtocol(Slot* slot) : slot_(slot) {}
  void connectionMade() override;
  void handshakeCompleted() override;
  void dataReceived(std::string_view data) override;
  void connectionLost(const Status& reason) override;
  // The slot bounds what is in flight (--pipeline), so there is nothing to throttle; stopping
  // reads while the peer echoes a large backlog would deadlock both sides.
  void pauseProducing() override {}
  void resumeProducing() override {}
  void detach() { slot_ = nullptr; }

 private:
  Slot* slot_;
};

class SlotFactory final : public api::Factory {
 public:
  explicit SlotFactory(Slot* slot) : slot_(slot) {}
  std::unique_ptr<api::Protocol> buildProtocol(const Address&) override {
    return std::make_unique<LoadProtocol>(slot_);
  }

 private:
  Slot* slot_;
};

// ---------------------------------------------------------------------------------------------
// Slot: one connection's worth of load, across reconnects.

class Slot {
 public:
  Slot(ShardLoad& load, int id);

  void start(Clock::time_point now);
  void onWake(Clock::time_point now);
  void scan(Clock::time_point now);
  void ticketWaitOver();
  void endNow();
  Clock::time_point parkedAt() const { return parkedAt_; }

  // From LoadProtocol.
  void onConnectionMade(LoadProtocol* p);
  void onHandshake();
  void onData(std::string_view data);
  void onLost(const Status& reason);

  // Open loop: whether the slot waits in its shard's wake-up heap (at most once).
  bool waking() const { return waking_; }
  void setWaking(bool waking) { waking_ = waking; }

 private:
  enum class Close { kGraceful, kAbort };
  struct InFlight {
    Clock::time_point start;  // where latency counts from (the schedule, in an open loop)
    Clock::time_point sent;   // when it went out (timeouts)
  };
  enum class Work { kNone, kEcho, kHttp };

  bool handshakeMode() const { return opt_.mode == Mode::kHandshake; }
  bool openLoop() const { return opt_.rate > 0; }
  // Whether a request whose latency counts from `start` is part of the measurement. In an open
  // loop it must be scheduled inside the window: requests scheduled in the warm-up and sent late
  // (connections still shaking hands) would otherwise land in the window with their whole wait,
  // and push the achieved rate above the offered one.
  bool counts(Clock::time_point start) const {
    return load_.measuring() && (!openLoop() || start >= load_.measureStart_);
  }
  void connect();
  void onConnectResult(uint64_t attempt, const Result<api::Protocol*>& r);
  void onReady();
  void pump(Clock::time_point now);
  void sendOne(Clock::time_point start, Clock::time_point now);
  void completeOne(Clock::time_point now);
  void dropOne();
  void echoData(std::string_view data, Clock::time_point now);
  void httpData(std::string_view data, Clock::time_point now);
  // A complete HTTP response; false if the connection was let go.
  bool onResponse(Clock::time_point now);
  void finishCycle(Clock::time_point now);
  void nextCycle(Clock::time_point now);
  // Lets the current connection go (close or reset); its late events are ignored.
  void releaseConnection(Close how);
  void fail(ErrorKind kind, const std::string& why);
  void retryLater();
  void resetStreams();
  Clock::time_point takeSchedule(Clock::time_point now);

  ShardLoad& load_;
  bool waking_ = false;
  const LoadPlan& plan_;
  const LoadOptions& opt_;
  int id_;
  Work work_ = Work::kNone;
  std::shared_ptr<api::Factory> factory_;

  LoadProtocol* conn_ = nullptr;
  bool ready_ = false;  // TLS handshake done (plain TCP: connected)
  bool connecting_ = false;
  uint64_t attempt_ = 0;
  int failures_ = 0;  // consecutive, for the retry back-off
  uint64_t completedOnConnection_ = 0;
  api::DelayedCall retryTimer_;

  Clock::time_point next_{};        // open loop: this connection's next scheduled request
  Clock::time_point cycleStart_{};  // handshake mode: where this cycle's latency counts from
  bool resumedConnection_ = false;
  bool parked_ = false;  // handshake mode: done, kept open for the session ticket
  Clock::time_point parkedAt_{};
  uint64_t ticketsAtConnect_ = 0;

  std::vector<InFlight> ring_;
  size_t head_ = 0;
  size_t count_ = 0;

  // Echo: stream offsets into the pattern.
  uint64_t seed_ = 0;
  uint64_t sendOffset_ = 0;
  uint64_t recvOffset_ = 0;
  uint64_t messageLeft_ = 0;

  HttpResponseParser parser_;
};

void LoadProtocol::connectionMade() {
  if (slot_ != nullptr) slot_->onConnectionMade(this);
}
void LoadProtocol::handshakeCompleted() {
  if (slot_ != nullptr) slot_->onHandshake();
}
void LoadProtocol::dataReceived(std::string_view data) {
  if (slot_ != nullptr) slot_->onData(data);
}
void LoadProtocol::connectionLost(const Status& reason) {
  if (slot_ != nullptr) slot_->onLost(reason);
}

Slot::Slot(ShardLoad& load, int id)
    : load_(load), plan_(load.plan_), opt_(load.plan_.options), id_(id) {
  if (opt_.mode == Mode::kEcho || opt_.request == Request::kEcho) work_ = Work::kEcho;
  if (opt_.mode == Mode::kHttp || opt_.request == Request::kHttp) work_ = Work::kHttp;
  auto inner = std::make_shared<SlotFactory>(this);
  if (load.tls_) {
    factory_ = std::make_shared<tls::TlsFactory>(load.tls_, inner);
  } else {
    factory_ = inner;
  }
  ring_.resize(static_cast<size_t>(std::max(1, opt_.pipeline)));
  seed_ = (static_cast<uint64_t>(id) * 7919) % LoadPlan::kPatternPeriod;
  resetStreams();
}

void Slot::resetStreams() {
  head_ = 0;
  count_ = 0;
  sendOffset_ = seed_;
  recvOffset_ = seed_;
  messageLeft_ = opt_.size;
  parser_.reset();
  completedOnConnection_ = 0;
}

void Slot::start(Clock::time_point now) {
  if (openLoop()) {
    // Connections take turns: connection i starts i/rate seconds in.
    next_ = plan_.start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(id_ / opt_.rate));
  }
  if (handshakeMode()) {
    nextCycle(now);
  } else {
    connect();
  }
}

Clock::time_point Slot::takeSchedule(Clock::time_point now) {
  Clock::time_point due = next_;
  next_ += plan_.interval;
  if (now - due > kLate && counts(due)) ++load_.lateSends_;
  return std::min(due, now);
}

void Slot::connect() {
  if (load_.over()) return;
  auto now = Clock::now();
  if (handshakeMode()) cycleStart_ = openLoop() ? takeSchedule(now) : now;
  resetStreams();
  resumedConnection_ = false;
  ticketsAtConnect_ = load_.ticketsSeen_;
  connecting_ = true;
  uint64_t attempt = ++attempt_;
  net::connectTcp(load_.shard_, load_.addresses_, factory_, load_.connectOptions_,
                  [this, attempt](Result<api::Protocol*> r) { onConnectResult(attempt, r); });
}

void Slot::onConnectResult(uint64_t attempt, const Result<api::Protocol*>& r) {
  if (attempt != attempt_) return;  // a later attempt started from inside this one's callbacks
  connecting_ = false;
  if (r.isOk() || load_.over()) return;
  const Status& s = r.status();
  fail(s.code() == Status::Code::kTimeout ? ErrorKind::kTimeout : ErrorKind::kConnect, s.message());
}

void Slot::onConnectionMade(LoadProtocol* p) {
  if (load_.over()) {
    p->detach();
    p->transport()->abortConnection();
    return;
  }
  conn_ = p;
  ready_ = false;
  load_.preferAddress(p->transport()->getPeer());
  if (load_.measuring()) ++load_.stats_.connects;
  if (!opt_.tls) onReady();
}

void Slot::onHandshake() {
  resumedConnection_ = conn_->transport()->sessionResumed();
  if (handshakeMode() ? counts(cycleStart_) : load_.measuring()) {
    ++load_.stats_.handshakes;
    if (resumedConnection_) ++load_.stats_.resumed;
  }
  onReady();
}

void Slot::onReady() {
  ready_ = true;
  failures_ = 0;
  auto now = Clock::now();
  if (!handshakeMode()) {
    pump(now);
    return;
  }
  if (work_ == Work::kNone) {
    if (counts(cycleStart_)) {
      ++load_.stats_.requests;
      load_.stats_.latency.record(micros(now - cycleStart_));
    }
    ++completedOnConnection_;
    finishCycle(now);
    return;
  }
  sendOne(cycleStart_, now);
}

void Slot::pump(Clock::time_point now) {
  if (!ready_ || conn_ == nullptr) return;
  const auto depth = ring_.size();
  if (!openLoop()) {
    while (count_ < depth) sendOne(now, now);
    return;
  }
  while (count_ < depth && next_ <= now + kEarlySlack) sendOne(takeSchedule(now), now);
  if (count_ < depth && !waking_) load_.wakeAt(this, next_);
}

void Slot::sendOne(Clock::time_point start, Clock::time_point now) {
  ring_[(head_ + count_) % ring_.size()] = InFlight{start, now};
  ++count_;
  api::Transport* t = conn_->transport();
  if (work_ == Work::kEcho) {
    size_t pos = static_cast<size_t>(sendOffset_ % LoadPlan::kPatternPeriod);
    t->write(std::string_view(plan_.echoPattern.data() + pos, opt_.size));
    sendOffset_ += opt_.size;
  } else {
    t->write(plan_.httpRequest);
  }
}

void Slot::completeOne(Clock::time_point now) {
  const InFlight& f = ring_[head_];
  if (counts(f.start)) {
    ++load_.stats_.requests;
    load_.stats_.latency.record(micros(now - f.start));
  }
  ++completedOnConnection_;
  head_ = (head_ + 1) % ring_.size();
  --count_;
}

void Slot::dropOne() {
  head_ = (head_ + 1) % ring_.size();
  --count_;
}

void Slot::onData(std::string_view data) {
  if (conn_ == nullptr || parked_ || !ready_) return;
  auto now = Clock::now();
  if (work_ == Work::kEcho) {
    echoData(data, now);
  } else if (work_ == Work::kHttp) {
    httpData(data, now);
  }
}

void Slot::echoData(std::string_view data, Clock::time_point now) {
  while (!data.empty()) {
    if (count_ == 0) {
      fail(ErrorKind::kMismatch, "the echo server sent more bytes than it was sent");
      return;
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), messageLeft_));
    // The pattern is periodic and kPatternPeriod + size long, so the window is contiguous.
    size_t pos = static_cast<size_t>(recvOffset_ % LoadPlan::kPatternPeriod);
    if (std::memcmp(data.data(), plan_.echoPattern.data() + pos, n) != 0) {
      fail(ErrorKind::kMismatch, "an echoed byte differs from the one sent at stream offset " +
                                     std::to_string(recvOffset_ - seed_));
      return;
    }
    recvOffset_ += n;
    messageLeft_ -= n;
    data.remove_prefix(n);
    if (messageLeft_ == 0) {
      messageLeft_ = opt_.size;
      completeOne(now);
      if (handshakeMode()) {
        if (!data.empty()) {
          fail(ErrorKind::kMismatch, "the echo server sent more bytes than it was sent");
          return;
        }
        finishCycle(now);
        return;
      }
    }
  }
  pump(now);
}

void Slot::httpData(std::string_view data, Clock::time_point now) {
  while (!data.empty()) {
    size_t used = 0;
    auto r = parser_.feed(data, &used);
    data.remove_prefix(used);
    if (r == HttpResponseParser::Result::kError) {
      fail(ErrorKind::kHttp, std::string("malformed HTTP response: ") + parser_.error());
      return;
    }
    if (r == HttpResponseParser::Result::kNeedMore) break;
    if (!onResponse(now)) return;
  }
  pump(now);
}

bool Slot::onResponse(Clock::time_point now) {
  if (count_ == 0) {
    fail(ErrorKind::kHttp, "a response to no request");
    return false;
  }
  int status = parser_.status();
  if (status >= 200 && status < 300) {
    completeOne(now);
  } else {
    dropOne();
    if (load_.measuring()) load_.stats_.addStatusError(status);
  }
  if (handshakeMode()) {
    finishCycle(now);
    return false;
  }
  if (!parser_.keepAlive()) {
    // The server closes after this response; requests pipelined behind it are lost.
    if (count_ > 0) {
      load_.noteError(ErrorKind::kClosed,
                      "the server closed a connection (Connection: close) with " +
                          std::to_string(count_) + " pipelined requests unanswered");
    }
    releaseConnection(Close::kGraceful);
    connect();
    return false;
  }
  return true;
}

void Slot::finishCycle(Clock::time_point now) {
  // TLS 1.3 sends the session ticket after the handshake: with nothing else to read, stay open
  // until this shard has one, or the next connection could not resume.
  if (work_ == Work::kNone && opt_.tls && opt_.resume && !resumedConnection_ &&
      load_.ticketsSeen_ == ticketsAtConnect_ && !load_.ticketsGivenUp_) {
    parked_ = true;
    parkedAt_ = now;
    load_.waitForTicket(this);
    return;
  }
  releaseConnection(Close::kGraceful);
  nextCycle(now);
}

void Slot::ticketWaitOver() {
  if (!parked_ || load_.over()) return;
  releaseConnection(Close::kGraceful);
  nextCycle(Clock::now());
}

void Slot::nextCycle(Clock::time_point now) {
  if (load_.over()) return;
  if (!openLoop() || next_ <= now + kEarlySlack) {
    connect();
  } else if (!waking_) {
    load_.wakeAt(this, next_);
  }
}

void Slot::onWake(Clock::time_point now) {
  if (load_.over()) return;
  if (!handshakeMode()) {
    pump(now);
    return;
  }
  if (conn_ == nullptr && !connecting_ && !retryTimer_.active()) nextCycle(now);
}

void Slot::releaseConnection(Close how) {
  LoadProtocol* p = conn_;
  conn_ = nullptr;
  ready_ = false;
  parked_ = false;
  head_ = 0;
  count_ = 0;
  if (p == nullptr) return;
  p->detach();
  if (how == Close::kAbort) {
    p->transport()->abortConnection();
  } else {
    p->transport()->loseConnection();
  }
}

void Slot::onLost(const Status& reason) {
  bool wasReady = ready_;
  bool wasParked = parked_;
  conn_ = nullptr;
  ready_ = false;
  parked_ = false;
  if (load_.over()) return;
  auto now = Clock::now();
  if (wasParked) {  // the cycle was complete; the server closed first
    nextCycle(now);
    return;
  }
  // A response delimited by the close is complete now.
  if (work_ == Work::kHttp && wasReady && count_ > 0 && !parser_.idle()) {
    if (parser_.finish() == HttpResponseParser::Result::kComplete) {
      int status = parser_.status();
      if (status >= 200 && status < 300) {
        completeOne(now);
      } else {
        dropOne();
        if (load_.measuring()) load_.stats_.addStatusError(status);
      }
      if (handshakeMode()) {
        head_ = count_ = 0;
        nextCycle(now);
        return;
      }
    }
  }
  bool outstanding = count_ > 0;
  head_ = count_ = 0;
  bool error = true;
  ErrorKind kind = ErrorKind::kClosed;
  if (reason.code() == Status::Code::kTimeout) {
    kind = ErrorKind::kTimeout;
  } else if (!wasReady || reason.code() == Status::Code::kTls) {
    kind = opt_.tls ? ErrorKind::kTls : ErrorKind::kClosed;
  } else if (!outstanding && !handshakeMode()) {
    error = false;  // an idle keep-alive connection closed by the server
  }
  if (error) {
    fail(kind, reason.message());
  } else if (completedOnConnection_ == 0) {
    retryLater();  // closed before doing anything: do not spin
  } else {
    connect();
  }
}

void Slot::fail(ErrorKind kind, const std::string& why) {
  load_.noteError(kind, why);
  releaseConnection(Close::kAbort);
  retryLater();
}

void Slot::retryLater() {
  if (load_.over()) return;
  ++failures_;
  auto delay = std::chrono::milliseconds(10) * (1 << std::min(failures_ - 1, 6));  // to 640 ms
  retryTimer_ = load_.shard_.callLater(delay, [this] {
    if (load_.over()) return;
    if (handshakeMode()) {
      nextCycle(Clock::now());
    } else {
      connect();
    }
  });
}

void Slot::scan(Clock::time_point now) {
  if (conn_ != nullptr && ready_ && count_ > 0 &&
      now - ring_[head_].sent > std::chrono::duration<double>(opt_.timeout)) {
    fail(ErrorKind::kTimeout, "no answer within " + std::to_string(opt_.timeout) + " s");
  }
}

void Slot::endNow() {
  retryTimer_.cancel();
  releaseConnection(Close::kAbort);
}

// ---------------------------------------------------------------------------------------------

ShardLoad::ShardLoad(const LoadPlan& plan, reactor::Shard& shard,
                     std::shared_ptr<tls::TlsContext> tls, const std::vector<int>& slotIds,
                     std::function<void()> onFinished)
    : plan_(plan),
      shard_(shard),
      tls_(std::move(tls)),
      onFinished_(std::move(onFinished)),
      addresses_(plan.addresses) {
  connectOptions_.timeout =
      std::chrono::milliseconds(static_cast<long>(plan.options.timeout * 1000));
  firstErrors_.resize(kErrorKinds);
  slots_.reserve(slotIds.size());
  for (int id : slotIds) slots_.push_back(std::make_unique<Slot>(*this, id));
  wakeHeap_.reserve(slots_.size());
  ticketWaiters_.reserve(slots_.size());
  ticketScratch_.reserve(slots_.size());
  if (tls_) {
    // whorl releases OpenSSL's record buffers whenever they drain (idle servers keep no memory);
    // a load generator's connections are never idle, and re-allocating both buffers for every
    // record costs about three mallocs per request. Keep them.
    SSL_CTX_clear_mode(tls_->raw(), SSL_MODE_RELEASE_BUFFERS);
  }
  if (tls_ && plan.options.resume) {
    // Hear about session tickets (see finishCycle), passing them on to the context's cache.
    SSL_CTX* ctx = tls_->raw();
    originalNewSession_ = SSL_CTX_sess_get_new_cb(ctx);
    SSL_CTX_set_ex_data(ctx, sslIndex(), this);
    SSL_CTX_sess_set_new_cb(ctx, &ShardLoad::newSessionHook);
  }
}

ShardLoad::~ShardLoad() {
  if (tls_ && plan_.options.resume) {
    SSL_CTX* ctx = tls_->raw();
    SSL_CTX_sess_set_new_cb(ctx, originalNewSession_);
    SSL_CTX_set_ex_data(ctx, sslIndex(), nullptr);
  }
}

int ShardLoad::newSessionHook(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<ShardLoad*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sslIndex()));
  if (self == nullptr) return 0;
  int kept = self->originalNewSession_ != nullptr ? self->originalNewSession_(ssl, session) : 0;
  self->onTicket();
  return kept;
}

void ShardLoad::start() {
  auto now = Clock::now();
  if (plan_.measureFrom <= now) {
    beginMeasuring();
  } else {
    warmupTimer_ = shard_.callLater(plan_.measureFrom - now, [this] { beginMeasuring(); });
  }
  scanTimer_ = shard_.callLater(std::chrono::milliseconds(50), [this] { scan(); });
  for (auto& s : slots_) s->start(now);
}

void ShardLoad::beginMeasuring() {
  if (ended_) return;
  measuring_ = true;
  measureStarted_ = true;
  measureStart_ = Clock::now();
  if (plan_.serverCpu != nullptr) plan_.serverCpu->begin();
  // The whole duration from here: a busy shard runs the warm-up timer late, and ending at the
  // planned time would measure less than was asked for.
  endTimer_ = shard_.callLater(plan_.measureUntil - plan_.measureFrom, [this] { end(); });
  wireIn0_ = shard_.stats().bytesIn.load(std::memory_order_relaxed);
  wireOut0_ = shard_.stats().bytesOut.load(std::memory_order_relaxed);
}

void ShardLoad::end() {
  if (ended_) return;
  measureEnd_ = Clock::now();
  if (measureStarted_) {
    if (plan_.serverCpu != nullptr) plan_.serverCpu->end();
    stats_.bytesIn = shard_.stats().bytesIn.load(std::memory_order_relaxed) - wireIn0_;
    stats_.bytesOut = shard_.stats().bytesOut.load(std::memory_order_relaxed) - wireOut0_;
  }
  measuring_ = false;
  ended_ = true;
  warmupTimer_.cancel();
  scanTimer_.cancel();
  wakeTimer_.cancel();
  wakeHeap_.clear();
  ticketWaiters_.clear();
  for (auto& s : slots_) s->endNow();
  onFinished_();
}

void ShardLoad::preferAddress(const Address& peer) {
  // "localhost" may resolve to ::1 first while the server listens on 127.0.0.1 only: once an
  // address has worked, try it first, so that a connection per request costs one connect.
  if (addresses_.size() < 2 || addresses_.front() == peer) return;
  auto it = std::find(addresses_.begin(), addresses_.end(), peer);
  if (it != addresses_.end()) std::rotate(addresses_.begin(), it, it + 1);
}

void ShardLoad::noteError(ErrorKind kind, const std::string& why) {
  if (!measuring_) return;
  stats_.addError(kind);
  std::string& first = firstErrors_[static_cast<size_t>(kind)];
  if (first.empty()) {
    first = why.empty() ? "(no reason given)" : why;
    WHORL_LOG(kInfo, "loadgen: first %s error: %s", errorKindName(kind), first.c_str());
  }
}

void ShardLoad::wakeAt(Slot* slot, Clock::time_point due) {
  auto later = [](const auto& a, const auto& b) { return a.first > b.first; };
  slot->setWaking(true);
  wakeHeap_.emplace_back(due, slot);
  std::push_heap(wakeHeap_.begin(), wakeHeap_.end(), later);
  armWakeTimer(wakeHeap_.front().first);
}

void ShardLoad::armWakeTimer(Clock::time_point due) {
  if (due >= wakeArmedAt_) return;
  wakeTimer_.cancel();
  wakeArmedAt_ = due;
  wakeTimer_ = shard_.callLater(due - Clock::now(), [this] { onWakeTimer(); });
}

void ShardLoad::onWakeTimer() {
  wakeArmedAt_ = Clock::time_point::max();
  if (over()) return;
  auto later = [](const auto& a, const auto& b) { return a.first > b.first; };
  auto now = Clock::now();
  while (!wakeHeap_.empty() && wakeHeap_.front().first <= now + kEarlySlack) {
    std::pop_heap(wakeHeap_.begin(), wakeHeap_.end(), later);
    Slot* slot = wakeHeap_.back().second;
    wakeHeap_.pop_back();
    slot->setWaking(false);
    slot->onWake(now);
  }
  if (!wakeHeap_.empty()) armWakeTimer(wakeHeap_.front().first);
}

void ShardLoad::scan() {
  if (over()) return;
  auto now = Clock::now();
  for (auto& s : slots_) s->scan(now);
  auto wait = ticketsSeen_ == 0 ? kFirstTicketWait : kTicketWait;
  if (!ticketWaiters_.empty() && now - ticketWaiters_.front()->parkedAt() > wait) {
    if (ticketsSeen_ == 0) ticketsGivenUp_ = true;
    releaseTicketWaiters(true);
  }
  scanTimer_ = shard_.callLater(std::chrono::milliseconds(50), [this] { scan(); });
}

void ShardLoad::waitForTicket(Slot* slot) { ticketWaiters_.push_back(slot); }

void ShardLoad::onTicket() {
  ++ticketsSeen_;
  if (ticketWaiters_.empty() || ticketReleaseQueued_) return;
  // We are inside OpenSSL, under a TLS layer's read: close the waiting connections afterwards.
  ticketReleaseQueued_ = true;
  shard_.callSoon([this] {
    ticketReleaseQueued_ = false;
    releaseTicketWaiters(false);
  });
}

void ShardLoad::releaseTicketWaiters(bool timedOut) {
  (void)timedOut;
  if (over()) return;
  ticketScratch_.swap(ticketWaiters_);
  for (Slot* s : ticketScratch_) s->ticketWaitOver();
  ticketScratch_.clear();
}

}  // namespace whorl::loadgen
