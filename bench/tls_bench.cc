// tls_bench: whorl::tls::TlsSession in memory (no sockets, no reactor): the floor the TLS network
// path is held to. Client and server sessions live in this thread; their output() is handed to
// each other with beginInput()/advanceHandshake() or read()/endInput(), like TlsLayer does.
//
//   bazel run -c opt //bench:tls_bench
//   bazel run -c opt //bench:tls_bench -- --benchmark_filter=Handshake --benchmark_min_time=0.2
//
// Certificates come from //certs (certs/test/): the server presents localhost.pem (EC P-256) or
// localhost-rsa.pem (RSA-2048) plus intermediate.pem as its chain; the client trusts ca.pem and
// verifies the name "localhost". `bazel run` starts in the runfiles tree, where those relative
// paths resolve.
//
// BM_Handshake/<key>_<version>: one full handshake per iteration, both sides, from creating the
//   two sessions to closing (close_notify queued) and destroying them, including the server's
//   NewSessionTicket(s) and the client reading them. Client contexts use resumeSessions=false,
//   so nothing is resumed. Time is the whole exchange (both sides); server_us and client_us split
//   it by who did the work (steady_clock around each side's calls). items_per_second: handshakes/s
//   of one core doing both ends.
// BM_HandshakeServerSide/...: the same exchange, but the reported time (UseManualTime) is only
//   the server's calls: TlsSession::create, advanceHandshake/read on the client's flights, and
//   the session's destruction. items_per_second = handshakes/s one server core can complete.
// BM_HandshakeServerSideColdCache/ecdsa_p256_tls13/evict_kib:N: the server side again, but before
//   each of the server's steps (untimed) N KiB of other memory is written, as the kernel's TCP
//   work and other connections do to a busy server core's caches between two steps of one
//   handshake. The hot-cache figure above is the floor; this shows how far cold caches move it.
// BM_ResumedHandshake/<version>, BM_ResumedHandshakeServerSide/...: resumeSessions=true; one full
//   handshake before timing, then every iteration a new session pair resumes the client
//   context's cached session (TLS 1.3: a ticket from the previous handshake, so a psk_dhe_ke
//   handshake with a fresh X25519 exchange but no certificate; TLS 1.2: the ticket, abbreviated
//   handshake). Fails if either side reports !resumed().
// BM_RecordEncrypt/<cipher>/bytes:N: the server's write() of N bytes of plaintext (one record)
//   then clearOutput(), on an established TLS 1.3 session.
// BM_RecordDecrypt/<cipher>/bytes:N: the server's beginInput()/read()/endInput() of one record
//   the client encrypted beforehand (batches of records are produced outside the timed region,
//   since a record can be decrypted only once, in order).
//   bytes_per_second counts plaintext.
//
// ossl_allocs/iter: OpenSSL allocations (CRYPTO_malloc/realloc) per iteration, counted through
// CRYPTO_set_mem_functions. Absent if OpenSSL had already allocated before this binary could hook
// it.
//
// Any failure (missing files, a failed handshake, no resumption, a wrong cipher) is reported with
// SkipWithError and makes the binary exit with status 1.
#include <benchmark/benchmark.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "framework/base/status.h"
#include "framework/tls/certificate.h"
#include "framework/tls/options.h"
#include "framework/tls/session.h"

namespace {

using whorl::Result;
using whorl::Status;
using whorl::tls::AcceptableCiphers;
using whorl::tls::Certificate;
using whorl::tls::ClientTLSExtras;
using whorl::tls::PrivateCertificate;
using whorl::tls::TLSVersion;
using whorl::tls::TlsContext;
using whorl::tls::TlsSession;
using Clock = std::chrono::steady_clock;

// ---- OpenSSL allocation counting ----------------------------------------------------------------

std::atomic<uint64_t> gOpenSSLAllocs{0};

void* countingMalloc(size_t n, const char*, int) {
  gOpenSSLAllocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* countingRealloc(void* p, size_t n, const char*, int) {
  gOpenSSLAllocs.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void countingFree(void* p, const char*, int) { std::free(p); }

// Must run before OpenSSL's first allocation (it refuses afterwards): a static initializer.
const bool gCountingOpenSSL =
    CRYPTO_set_mem_functions(countingMalloc, countingRealloc, countingFree) == 1;

uint64_t openSSLAllocs() { return gOpenSSLAllocs.load(std::memory_order_relaxed); }

void reportOpenSSLAllocs(benchmark::State& state, uint64_t before) {
  if (!gCountingOpenSSL) return;
  state.counters["ossl_allocs/iter"] = benchmark::Counter(
      static_cast<double>(openSSLAllocs() - before), benchmark::Counter::kAvgIterations);
}

// ---- Failure reporting --------------------------------------------------------------------------

bool gFailed = false;

// The console shows the message in the benchmark's row ("ERROR OCCURRED: ..."); main() then
// exits with status 1.
void fail(benchmark::State& state, const std::string& what) {
  gFailed = true;
  state.SkipWithError(what.c_str());
}

// ---- Contexts -----------------------------------------------------------------------------------

enum class Key { kEcdsaP256, kRsa2048 };

// The files are read relative to the working directory.
Status withHint(const Status& s) {
  return Status(s.code(), s.message() +
                              " (run with `bazel run //bench:tls_bench`, or from a directory "
                              "that holds certs/test/)");
}

const char* keyFile(Key key) {
  return key == Key::kEcdsaP256 ? "certs/test/localhost.pem" : "certs/test/localhost-rsa.pem";
}

Result<std::shared_ptr<TlsContext>> serverContext(
    Key key, std::optional<AcceptableCiphers> ciphers = std::nullopt) {
  auto cert = PrivateCertificate::loadPEMFile(keyFile(key));
  if (!cert) return withHint(cert.status());
  // localhost*.pem hold key + leaf only; the client trusts just the root, so the server must send
  // the intermediate too (as a real deployment would).
  auto intermediate = Certificate::loadPEMFile("certs/test/intermediate.pem");
  if (!intermediate) return withHint(intermediate.status());
  auto options = cert->options();
  options.extraCertChain = {*intermediate};
  options.acceptableCiphers = std::move(ciphers);
  return options.context();
}

Result<std::shared_ptr<TlsContext>> clientContext(TLSVersion maximum, bool resumeSessions) {
  auto ca = Certificate::loadPEMFile("certs/test/ca.pem");
  if (!ca) return withHint(ca.status());
  ClientTLSExtras extras;
  extras.resumeSessions = resumeSessions;
  if (maximum != TLSVersion::TLSv1_3) extras.lowerMaximumSecurityTo = maximum;
  auto options = whorl::tls::optionsForClientTLS(
      "localhost", whorl::tls::trustRootFromCertificates({*ca}), std::nullopt, {}, extras);
  if (!options) return options.status();
  return options.context();
}

// ---- Moving bytes between the two sessions ------------------------------------------------------

// Hands `from`'s pending ciphertext to `to`, as TlsLayer::dataReceived would: the handshake while
// it runs, then read() for whatever follows (TLS 1.3 NewSessionTicket is post-handshake and is
// only processed by a read). The time spent in `to`'s calls is added to *toTime.
Status deliver(TlsSession& from, TlsSession& to, Clock::duration* toTime) {
  if (from.output().empty()) return Status::ok();
  Status status;
  auto start = Clock::now();
  to.beginInput(from.output());
  if (!to.handshakeDone()) {
    bool completed = false;
    status = to.advanceHandshake(&completed);
  }
  size_t plaintext = 0;
  if (status.isOk() && to.handshakeDone()) {
    auto r = to.read([&plaintext](std::string_view p) {
      plaintext += p.size();
      return true;
    });
    if (r == TlsSession::ReadResult::kFailed) status = to.failure();
    if (r == TlsSession::ReadResult::kPeerClosed) {
      status = Status(Status::Code::kTls, "unexpected close_notify during the handshake");
    }
  }
  to.endInput();
  *toTime += Clock::now() - start;
  from.clearOutput();
  if (status.isOk() && plaintext != 0) {
    status = Status(Status::Code::kTls, "unexpected application data during the handshake");
  }
  return status;
}

struct SideTimes {
  Clock::duration client{};
  Clock::duration server{};
  size_t evictBytes = 0;  // dirtied, untimed, before each server step (0: caches stay hot)
};

// Writes one byte per cache line of a `bytes`-long buffer: what a server core's caches go
// through between two steps of one handshake (the kernel's TCP work, other connections).
void evictCaches(size_t bytes) {
  static std::vector<unsigned char> junk;
  if (bytes == 0) return;
  if (junk.size() < bytes) junk.resize(bytes);
  for (size_t i = 0; i < bytes; i += 64) junk[i] += 1;
  benchmark::ClobberMemory();
}

// Runs the handshake to the end: both sides done and nothing left in flight (tickets read).
Status handshake(TlsSession& client, TlsSession& server, SideTimes* times) {
  auto start = Clock::now();
  bool completed = false;
  Status status = client.advanceHandshake(&completed);  // ClientHello
  times->client += Clock::now() - start;
  if (!status.isOk()) return status.withContext("client");
  for (int flight = 0; flight < 8; ++flight) {
    if (client.handshakeDone() && server.handshakeDone() && client.output().empty() &&
        server.output().empty()) {
      return Status::ok();
    }
    evictCaches(times->evictBytes);
    Status s = deliver(client, server, &times->server);
    if (!s.isOk()) return s.withContext("server");
    s = deliver(server, client, &times->client);
    if (!s.isOk()) return s.withContext("client");
  }
  return Status(Status::Code::kTls, "handshake did not finish after 8 round trips");
}

struct Pair {
  std::unique_ptr<TlsSession> client;
  std::unique_ptr<TlsSession> server;
};

// Creates a session pair and handshakes; on failure returns the reason.
Result<Pair> connect(const std::shared_ptr<TlsContext>& clientCtx,
                     const std::shared_ptr<TlsContext>& serverCtx, SideTimes* times) {
  evictCaches(times->evictBytes);
  auto start = Clock::now();
  auto server = TlsSession::create(serverCtx);
  auto mid = Clock::now();
  auto client = TlsSession::create(clientCtx);
  times->client += Clock::now() - mid;
  times->server += mid - start;
  if (!server) return server.status().withContext("server session");
  if (!client) return client.status().withContext("client session");
  Pair pair{std::move(*client), std::move(*server)};
  if (Status s = handshake(*pair.client, *pair.server, times); !s.isOk()) return s;
  return pair;
}

// Closes both sides the way TlsLayer::loseConnection does (close_notify queued, not awaited) and
// destroys the sessions, timing each side. The close_notify matters beyond realism: OpenSSL marks
// the session of an SSL freed without having sent one as not resumable (ssl_clear_bad_session),
// and the client context caches exactly that SSL_SESSION, so skipping it would end resumption.
void closeAndDestroy(Pair& pair, SideTimes* times) {
  evictCaches(times->evictBytes);
  auto start = Clock::now();
  pair.server->shutdown();
  pair.server->clearOutput();
  pair.server.reset();
  auto mid = Clock::now();
  pair.client->shutdown();
  pair.client->clearOutput();
  pair.client.reset();
  times->server += mid - start;
  times->client += Clock::now() - mid;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string describe(const TlsSession& s) { return s.version() + " " + s.cipher(); }

// ---- Handshakes ---------------------------------------------------------------------------------

// serverSide: report only the server's time (UseManualTime). evictBytes: see SideTimes.
void runHandshakes(benchmark::State& state, Key key, TLSVersion version, bool resume,
                   bool serverSide, size_t evictBytes = 0) {
  auto serverCtx = serverContext(key);
  if (!serverCtx) return fail(state, serverCtx.status().message());
  auto clientCtx = clientContext(version, resume);
  if (!clientCtx) return fail(state, clientCtx.status().message());

  std::string label;
  if (resume) {
    // The full handshake that gives the client a session to resume.
    SideTimes unused;
    auto first = connect(*clientCtx, *serverCtx, &unused);
    if (!first) return fail(state, "first (full) handshake: " + first.status().message());
    if (first->client->resumed()) return fail(state, "the first handshake claims to be resumed");
    closeAndDestroy(*first, &unused);
  }

  SideTimes total;
  const uint64_t allocsBefore = openSSLAllocs();
  for (auto _ : state) {
    SideTimes times;
    times.evictBytes = evictBytes;
    auto pair = connect(*clientCtx, *serverCtx, &times);
    if (!pair) return fail(state, pair.status().message());
    if (resume != pair->client->resumed() || resume != pair->server->resumed()) {
      return fail(state, std::string(resume ? "not resumed" : "unexpectedly resumed") +
                             " (client resumed()=" + (pair->client->resumed() ? "true" : "false") +
                             ", server resumed()=" + (pair->server->resumed() ? "true" : "false") +
                             ", " + describe(*pair->client) + ")");
    }
    if (label.empty()) label = describe(*pair->server) + (resume ? " resumed" : " full");
    closeAndDestroy(*pair, &times);
    if (serverSide) state.SetIterationTime(seconds(times.server));
    total.client += times.client;
    total.server += times.server;
  }
  state.SetLabel(label);
  state.SetItemsProcessed(state.iterations());
  reportOpenSSLAllocs(state, allocsBefore);
  state.counters["server_us"] =
      benchmark::Counter(seconds(total.server) * 1e6, benchmark::Counter::kAvgIterations);
  state.counters["client_us"] =
      benchmark::Counter(seconds(total.client) * 1e6, benchmark::Counter::kAvgIterations);
}

void BM_Handshake(benchmark::State& state, Key key, TLSVersion version) {
  runHandshakes(state, key, version, /*resume=*/false, /*serverSide=*/false);
}
void BM_HandshakeServerSide(benchmark::State& state, Key key, TLSVersion version) {
  runHandshakes(state, key, version, /*resume=*/false, /*serverSide=*/true);
}
// The server's time with its caches dirtied before each of its steps: state.range(0) KiB.
void BM_HandshakeServerSideColdCache(benchmark::State& state, Key key, TLSVersion version) {
  runHandshakes(state, key, version, /*resume=*/false, /*serverSide=*/true,
                static_cast<size_t>(state.range(0)) * 1024);
}
void BM_ResumedHandshake(benchmark::State& state, TLSVersion version) {
  runHandshakes(state, Key::kEcdsaP256, version, /*resume=*/true, /*serverSide=*/false);
}
void BM_ResumedHandshakeServerSide(benchmark::State& state, TLSVersion version) {
  runHandshakes(state, Key::kEcdsaP256, version, /*resume=*/true, /*serverSide=*/true);
}

#define WHORL_HANDSHAKE_CASES(bm, ...)                                                      \
  BENCHMARK_CAPTURE(bm, ecdsa_p256_tls13, Key::kEcdsaP256, TLSVersion::TLSv1_3) __VA_ARGS__; \
  BENCHMARK_CAPTURE(bm, rsa2048_tls13, Key::kRsa2048, TLSVersion::TLSv1_3) __VA_ARGS__;      \
  BENCHMARK_CAPTURE(bm, ecdsa_p256_tls12, Key::kEcdsaP256, TLSVersion::TLSv1_2) __VA_ARGS__; \
  BENCHMARK_CAPTURE(bm, rsa2048_tls12, Key::kRsa2048, TLSVersion::TLSv1_2) __VA_ARGS__

WHORL_HANDSHAKE_CASES(BM_Handshake, ->Unit(benchmark::kMicrosecond));
WHORL_HANDSHAKE_CASES(BM_HandshakeServerSide, ->Unit(benchmark::kMicrosecond)->UseManualTime());

BENCHMARK_CAPTURE(BM_HandshakeServerSideColdCache, ecdsa_p256_tls13, Key::kEcdsaP256,
                  TLSVersion::TLSv1_3)
    ->ArgName("evict_kib")
    ->Arg(64)
    ->Arg(512)
    ->Arg(2048)
    ->Arg(8192)
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime();

BENCHMARK_CAPTURE(BM_ResumedHandshake, tls13, TLSVersion::TLSv1_3)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ResumedHandshake, tls12, TLSVersion::TLSv1_2)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ResumedHandshakeServerSide, tls13, TLSVersion::TLSv1_3)
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_ResumedHandshakeServerSide, tls12, TLSVersion::TLSv1_2)
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime();

// ---- Records ------------------------------------------------------------------------------------

struct Suite {
  const char* tls13;  // the only TLS 1.3 ciphersuite the server accepts
};
constexpr Suite kAes128Gcm{"TLS_AES_128_GCM_SHA256"};
constexpr Suite kChaCha20Poly1305{"TLS_CHACHA20_POLY1305_SHA256"};

// An established TLS 1.3 pair whose server accepts only `suite`, or the reason there is none.
Result<Pair> establish(benchmark::State& state, const Suite& suite) {
  auto ciphers = AcceptableCiphers::fromOpenSSLCipherString("ECDHE+AESGCM", suite.tls13);
  if (!ciphers) return ciphers.status();
  auto serverCtx = serverContext(Key::kEcdsaP256, *ciphers);
  if (!serverCtx) return serverCtx.status();
  auto clientCtx = clientContext(TLSVersion::TLSv1_3, /*resumeSessions=*/false);
  if (!clientCtx) return clientCtx.status();
  SideTimes unused;
  auto pair = connect(*clientCtx, *serverCtx, &unused);
  if (!pair) return pair.status();
  if (pair->server->version() != "TLSv1.3" || pair->server->cipher() != suite.tls13) {
    return Status(Status::Code::kTls, "negotiated " + describe(*pair->server) +
                                          ", wanted TLSv1.3 " + suite.tls13);
  }
  state.SetLabel(describe(*pair->server));
  return pair;
}

void BM_RecordEncrypt(benchmark::State& state, Suite suite) {
  const auto size = static_cast<size_t>(state.range(0));
  auto pair = establish(state, suite);
  if (!pair) return fail(state, pair.status().message());
  TlsSession& server = *pair->server;
  const std::string plain(size, 'x');
  const uint64_t allocsBefore = openSSLAllocs();
  for (auto _ : state) {
    if (Status s = server.write(plain); !s.isOk()) return fail(state, s.message());
    benchmark::DoNotOptimize(server.output().data());
    server.clearOutput();
  }
  reportOpenSSLAllocs(state, allocsBefore);
  state.SetBytesProcessed(static_cast<int64_t>(size * state.iterations()));
}

void BM_RecordDecrypt(benchmark::State& state, Suite suite) {
  const auto size = static_cast<size_t>(state.range(0));
  auto pair = establish(state, suite);
  if (!pair) return fail(state, pair.status().message());
  TlsSession& client = *pair->client;
  TlsSession& server = *pair->server;
  const std::string plain(size, 'x');
  // Records for the server to decrypt, made by the client ahead of time (about 4 MiB at once).
  const size_t batch = std::clamp<size_t>((size_t{4} << 20) / (size + 22), 256, 16384);
  std::string wire;
  std::vector<size_t> ends;  // end offset of each record in `wire`
  size_t next = 0;
  auto refill = [&]() -> Status {
    ends.clear();
    next = 0;
    for (size_t i = 0; i < batch; ++i) {
      WHORL_RETURN_IF_ERROR(client.write(plain));
      ends.push_back(client.output().size());
    }
    wire.assign(client.output());
    client.clearOutput();
    return Status::ok();
  };
  if (Status s = refill(); !s.isOk()) return fail(state, s.message());

  size_t decrypted = 0;
  const uint64_t allocsBefore = openSSLAllocs();
  for (auto _ : state) {
    if (next == ends.size()) {
      state.PauseTiming();
      Status s = refill();
      state.ResumeTiming();
      if (!s.isOk()) return fail(state, s.message());
    }
    const size_t begin = next == 0 ? 0 : ends[next - 1];
    server.beginInput(std::string_view(wire).substr(begin, ends[next] - begin));
    auto r = server.read([&decrypted](std::string_view p) {
      benchmark::DoNotOptimize(p.data());
      decrypted += p.size();
      return true;
    });
    server.endInput();
    if (r != TlsSession::ReadResult::kWantMore) {
      return fail(state, "read: " + (r == TlsSession::ReadResult::kFailed
                                         ? server.failure().message()
                                         : std::string("unexpected result")));
    }
    ++next;
  }
  reportOpenSSLAllocs(state, allocsBefore);
  if (decrypted != size * state.iterations()) {
    return fail(state, "decrypted " + std::to_string(decrypted) + " bytes, expected " +
                           std::to_string(size * state.iterations()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(decrypted));
}

#define WHORL_RECORD_SIZES ->ArgName("bytes")->Arg(16)->Arg(256)->Arg(1024)->Arg(4096)->Arg(16384)

BENCHMARK_CAPTURE(BM_RecordEncrypt, aes128gcm, kAes128Gcm) WHORL_RECORD_SIZES;
BENCHMARK_CAPTURE(BM_RecordEncrypt, chacha20poly1305, kChaCha20Poly1305) WHORL_RECORD_SIZES;
BENCHMARK_CAPTURE(BM_RecordDecrypt, aes128gcm, kAes128Gcm) WHORL_RECORD_SIZES;
BENCHMARK_CAPTURE(BM_RecordDecrypt, chacha20poly1305, kChaCha20Poly1305) WHORL_RECORD_SIZES;

}  // namespace

// Our own main (instead of benchmark_main's) so that any SkipWithError fails the run.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (gFailed) {
    std::fprintf(stderr, "tls_bench: FAILED (see the errors above)\n");
    return 1;
  }
  return 0;
}
