// loadgen: a load generator built on whorl (io_uring shards, TLS client with session resumption).
//
//   bazel run -c opt //tools:loadgen -- --mode=http --target 127.0.0.1:8443
//       --ca certs/public.pem --hostname example.com --connections 64 --duration 10
//   bazel run -c opt //tools:loadgen -- --mode=echo --tls=off --size 1024 --pipeline 4
//       --target 127.0.0.1:8000
//   bazel run -c opt //tools:loadgen -- --mode=handshake --resume --target 127.0.0.1:8443 ...
//   ... --rate 20000      # open loop: latency from each request's scheduled time (like wrk2)
//   ... --json            # one line of JSON instead of the table
//
// Each shard (--shards) drives its share of --connections with its own TLS client context, so
// session resumption uses one cache per shard. The run lasts --warmup plus --duration seconds;
// only the latter is measured (in an open loop: the requests scheduled in it). Exit status: 0; 1 if no request succeeded (or the runtime could
// not start); 2 for bad flags or unusable TLS settings.
#include <sched.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "framework/base/files.h"
#include "framework/base/log.h"
#include "framework/reactor/resolver.h"
#include "framework/reactor/runtime.h"
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "tools/loadgen/load.h"
#include "tools/loadgen/options.h"
#include "tools/loadgen/report.h"

using namespace whorl;
using namespace whorl::loadgen;

namespace {

int usageError(const std::string& message) {
  std::fprintf(stderr, "loadgen: %s\n", message.c_str());
  return 2;
}

std::string hostHeader(const LoadOptions& o) {
  std::string name = o.tls ? o.hostname : o.host;
  if (name.find(':') != std::string::npos) name = "[" + name + "]";
  if (o.port != (o.tls ? 443 : 80)) name += ":" + std::to_string(o.port);
  return name;
}

LoadPlan makePlan(const LoadOptions& o, std::vector<Address> addresses) {
  LoadPlan plan;
  plan.options = o;
  plan.addresses = std::move(addresses);
  plan.httpRequest = "GET " + o.path + " HTTP/1.1\r\nHost: " + hostHeader(o) +
                     "\r\nUser-Agent: whorl-loadgen\r\nAccept: */*\r\n\r\n";
  if (o.mode == Mode::kEcho || o.request == Request::kEcho) {
    // Pseudo-random bytes with period kPatternPeriod, long enough for any window of --size.
    std::string base(LoadPlan::kPatternPeriod, '\0');
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto& c : base) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<char>(x >> 24);
    }
    plan.echoPattern.reserve(LoadPlan::kPatternPeriod + o.size);
    while (plan.echoPattern.size() < LoadPlan::kPatternPeriod + o.size) {
      plan.echoPattern.append(base, 0,
                              std::min<size_t>(base.size(), LoadPlan::kPatternPeriod + o.size -
                                                                plan.echoPattern.size()));
    }
  }
  if (o.rate > 0) {
    plan.interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(o.connections / o.rate));
  }
  return plan;
}

}  // namespace

int main(int argc, char** argv) {
  LoadOptions o;
  if (Status s = parseLoadOptions(argc, argv, &o); !s.isOk()) return usageError(s.message());
  if (o.help) {
    std::fputs(loadUsage().c_str(), stdout);
    return 0;
  }
  log::setLevel(o.verbose ? log::Level::kInfo : log::Level::kWarning);

  RunInfo info;
  info.mode = toString(o.mode);
  info.request = toString(o.request);
  info.target = o.target;
  info.tls = o.tls;
  info.hostname = o.hostname;
  info.path = o.path;
  info.size = o.size;
  info.pipeline = o.pipeline;
  info.rate = o.rate;
  info.resume = o.resume;
  info.warmupSeconds = o.warmup;
  if (o.shards > o.connections) {
    info.notes.push_back("--shards " + std::to_string(o.shards) + " lowered to " +
                         std::to_string(o.connections) + ", one per connection");
    o.shards = o.connections;
  }
  info.connections = o.connections;
  info.shards = o.shards;

  if (!o.cpus.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : o.cpus) CPU_SET(c, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      return usageError("--cpus: cannot run on those CPUs: " + std::string(std::strerror(errno)));
    }
  }

  auto addresses = reactor::Resolver::resolveNow(o.host, o.port, AF_UNSPEC);
  if (!addresses || addresses->empty()) {
    std::fprintf(stderr, "loadgen: cannot resolve %s: %s\n", o.host.c_str(),
                 addresses ? "no address" : addresses.status().message().c_str());
    return 1;
  }

  // One client context per shard: each has its own session cache, no lock shared across shards.
  std::vector<std::shared_ptr<tls::TlsContext>> contexts(static_cast<size_t>(o.shards));
  if (o.tls) {
    std::optional<tls::TrustRoot> trust;
    if (!o.caPath.empty()) {
      auto t = tls::trustRootFromPath(findDataFile(o.caPath));
      if (!t) return usageError("--ca: " + t.status().message());
      trust = *t;
    } else {
      auto t = tls::platformTrust();
      if (!t) return usageError(t.status().message());
      trust = *t;
    }
    auto ktls = tls::parseKtlsMode(o.ktls);
    if (!ktls) return usageError("--ktls: " + ktls.status().message());
    tls::ClientTLSExtras extras;
    extras.handshakeTimeout = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000));
    extras.resumeSessions = o.resume;
    extras.ktls = *ktls;
    std::vector<std::string> alpn;
    if (o.mode == Mode::kHttp || o.request == Request::kHttp) alpn = {"http/1.1"};
    for (auto& c : contexts) {
      auto options = tls::optionsForClientTLS(o.hostname, trust, std::nullopt, alpn, extras);
      if (!options) return usageError(options.status().message());
      c = options.context();
    }
  }

  LoadPlan plan = makePlan(o, std::move(addresses.value()));

  reactor::RuntimeOptions ro;
  ro.shards = o.shards;
  ro.pinThreads = !o.cpus.empty();
  ro.drainTimeout = std::chrono::milliseconds(0);
  reactor::Runtime runtime(ro);
  if (Status s = runtime.start(); !s.isOk()) {
    std::fprintf(stderr, "loadgen: cannot start the runtime: %s\n", s.message().c_str());
    return 1;
  }

  plan.start = Clock::now();
  plan.measureFrom = plan.start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(o.warmup));
  plan.measureUntil = plan.measureFrom + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(o.duration));

  std::optional<WindowSampler> serverCpu;
  if (o.serverPid > 0) {
    if (auto probe = sampleProcessTree(o.serverPid); !probe) return usageError(probe.status().message());
    serverCpu.emplace(o.serverPid, o.shards);
    plan.serverCpu = &*serverCpu;
  }

  std::atomic<int> running{o.shards};
  std::vector<std::unique_ptr<ShardLoad>> loads;
  for (int i = 0; i < o.shards; ++i) {
    std::vector<int> ids;
    for (int c = i; c < o.connections; c += o.shards) ids.push_back(c);
    loads.push_back(std::make_unique<ShardLoad>(
        plan, runtime.shard(i), contexts[static_cast<size_t>(i)], ids, [&running, &runtime] {
          if (running.fetch_sub(1) == 1) runtime.stop(std::chrono::milliseconds(0));
        }));
  }
  for (int i = 0; i < o.shards; ++i) {
    ShardLoad* load = loads[static_cast<size_t>(i)].get();
    runtime.shard(i).post([load] { load->start(); });
  }
  runtime.run();  // until the last shard's load ends (or SIGINT/SIGTERM)
  auto stopped = Clock::now();

  LoadStats total;
  std::optional<Clock::time_point> from, to;
  std::vector<std::string> firstErrors(kErrorKinds);
  bool ticketsGivenUp = false;
  uint64_t late = 0;
  for (int i = 0; i < o.shards; ++i) {
    ShardLoad& load = *loads[static_cast<size_t>(i)];
    if (!load.measured()) continue;
    LoadStats s = load.stats();
    if (!load.ended()) {  // interrupted: count the bytes up to now
      auto& st = runtime.shard(i).stats();
      s.bytesIn = st.bytesIn.load() - load.wireInAtStart();
      s.bytesOut = st.bytesOut.load() - load.wireOutAtStart();
    }
    total.merge(s);
    auto end = load.ended() ? load.measureEnd() : stopped;
    if (!from || load.measureStart() < *from) from = load.measureStart();
    if (!to || end > *to) to = end;
    for (int k = 0; k < kErrorKinds; ++k) {
      auto& mine = firstErrors[static_cast<size_t>(k)];
      if (mine.empty()) mine = load.firstErrors()[static_cast<size_t>(k)];
    }
    ticketsGivenUp = ticketsGivenUp || load.ticketsGivenUp();
    late += load.lateSends();
  }
  info.windowSeconds = from ? std::chrono::duration<double>(*to - *from).count() : 0;
  if (!from) info.notes.push_back("stopped before the warm-up ended: nothing was measured");
  if (info.windowSeconds + 0.05 < o.duration && from) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "interrupted after %.2f s of the %.2f s to measure",
                  info.windowSeconds, o.duration);
    info.notes.push_back(buf);
  }
  for (int k = 0; k < kErrorKinds; ++k) {
    const auto& e = firstErrors[static_cast<size_t>(k)];
    if (!e.empty()) {
      info.notes.push_back(std::string("first ") + errorKindName(static_cast<ErrorKind>(k)) +
                           " error: " + e);
    }
  }
  if (ticketsGivenUp) {
    info.notes.push_back(
        "the server sent no session ticket after full handshakes; connections "
        "stopped waiting for one");
  }
  if (o.resume && total.handshakes > 0 && total.resumed == 0) {
    info.notes.push_back("no handshake resumed a session");
  }
  info.lateRequests = late;
  if (late > 0 && total.requests > 0) {
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "%llu request%s (%.1f%%) went out over 1 ms behind schedule: the target or the "
                  "load generator could not keep up with --rate; latency counts from the schedule",
                  static_cast<unsigned long long>(late), late == 1 ? "" : "s",
                  100.0 * static_cast<double>(late) / static_cast<double>(total.requests));
    info.notes.push_back(buf);
  }

  if (serverCpu) {
    info.serverPid = o.serverPid;
    if (auto w = serverCpu->window()) {
      info.serverSampled = true;
      info.serverUserSeconds = w->userSeconds();
      info.serverSystemSeconds = w->systemSeconds();
      info.serverWakeups = w->wakeups();
      info.serverPreemptions = w->preemptions();
    } else {
      info.notes.push_back("the server's CPU was not measured: " + serverCpu->error());
    }
  }

  std::string out = o.json ? formatJson(info, total) + "\n" : formatText(info, total);
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  return total.requests > 0 ? 0 : 1;
}
