// Memory per idle TLS connection, kernel TLS against userspace TLS. Each mode's server runs in a
// fresh child process (forked while this process has no other thread), so neither measurement
// inherits the other's freed-but-kept heap; the clients are raw TlsSessions in the parent. The
// child reports its VmRSS (and RssAnon) before and after N idle connections. Memory the kernel
// keeps per kTLS socket (its TLS context, cipher state, record buffers) is not in any process's
// RSS and not counted here.
#include <fcntl.h>
#include <malloc.h>
#include <sys/wait.h>

#include <cstring>
#include <thread>

#include "tests/ktls/ktls_support.h"

namespace whorl {
namespace {

using namespace ktlstest;

constexpr int kIdle = 200;
constexpr int kWarmup = 8;

long statusKiB(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':')
      return std::atol(line.c_str() + n + 1);
  }
  return -1;
}

std::string readLine(int fd) {
  std::string s;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') s += c;
  return s;
}
void writeLine(int fd, const std::string& s) {
  std::string l = s + "\n";
  (void)!write(fd, l.data(), l.size());
}

// The server side, in the child: listens, reports, measures on request. Never returns.
[[noreturn]] void serveAndMeasure(tls::KtlsMode mode, int in, int out) {
  reactor::RuntimeOptions o;
  o.shards = 1;
  o.pinThreads = false;
  reactor::Runtime rt(o);
  if (!rt.start().isOk()) _exit(2);
  ServerLog log;
  endpoint::TcpServerOptions tcp;
  tcp.interface = "127.0.0.1";
  auto port = endpoint::SSL4ServerEndpoint(rt, 0, KtlsBase::serverOptions(kCases[0], mode), tcp)
                  .listen(api::Factory::forProtocol<ServerEcho>(&log));
  if (!port.isOk()) _exit(3);
  writeLine(out, std::to_string((*port)->getHost().port()));
  // Baseline: after the warm-up connections closed (code paths and pools touched once).
  if (readLine(in) != "baseline") _exit(4);
  {
    std::unique_lock<std::mutex> l(log.mu);
    log.cv.wait_for(l, 30s, [&] { return log.losses.size() >= static_cast<size_t>(kWarmup); });
  }
  std::this_thread::sleep_for(300ms);
  malloc_trim(0);
  long rss0 = statusKiB("VmRSS"), anon0 = statusKiB("RssAnon");
  writeLine(out, "ok");
  if (readLine(in) != "measure") _exit(5);
  auto modes = log.waitModes(static_cast<size_t>(kWarmup + kIdle), 60s);
  std::this_thread::sleep_for(500ms);  // idle: every connection back to waiting for input
  long rss1 = statusKiB("VmRSS"), anon1 = statusKiB("RssAnon");
  int kernel = 0, user = 0;
  for (size_t i = static_cast<size_t>(kWarmup); i < modes.size(); ++i) {
    if (modes[i] == "kernel TX+RX") ++kernel;
    if (modes[i] == "userspace") ++user;
  }
  writeLine(out, std::to_string(rss0) + " " + std::to_string(rss1) + " " + std::to_string(anon0) +
                     " " + std::to_string(anon1) + " " + std::to_string(kernel) + " " +
                     std::to_string(user));
  readLine(in);  // the parent is done with its clients
  _exit(0);
}

struct Measured {
  long rss0 = 0, rss1 = 0, anon0 = 0, anon1 = 0;
  int kernel = 0, user = 0;
  bool ok = false;
  double perConnection() const { return static_cast<double>(rss1 - rss0) / kIdle; }
  double anonPerConnection() const { return static_cast<double>(anon1 - anon0) / kIdle; }
};

Measured measure(tls::KtlsMode mode) {
  Measured m;
  int toChild[2], toParent[2];
  if (pipe2(toChild, O_CLOEXEC) != 0 || pipe2(toParent, O_CLOEXEC) != 0) return m;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    close(toChild[1]);
    close(toParent[0]);
    serveAndMeasure(mode, toChild[0], toParent[1]);
  }
  close(toChild[0]);
  close(toParent[1]);
  int in = toParent[0], out = toChild[1];
  uint16_t port = static_cast<uint16_t>(std::atoi(readLine(in).c_str()));
  auto options = KtlsBase::clientOptions(kCases[0], tls::KtlsMode::kOff);
  auto connectOne = [&]() -> std::unique_ptr<RawClient> {
    auto c = std::make_unique<RawClient>(port, options);
    if (!c->handshake() || !c->send("ping") || c->receive(4) != "ping") return nullptr;
    return c;
  };
  bool ok = port != 0;
  for (int i = 0; ok && i < kWarmup; ++i) ok = connectOne() != nullptr;  // closed at once
  writeLine(out, "baseline");
  ok = ok && readLine(in) == "ok";
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; ok && i < kIdle; ++i) {
    idle.push_back(connectOne());
    ok = idle.back() != nullptr;
  }
  writeLine(out, "measure");
  std::istringstream r(readLine(in));
  r >> m.rss0 >> m.rss1 >> m.anon0 >> m.anon1 >> m.kernel >> m.user;
  m.ok = ok && !r.fail();
  idle.clear();
  writeLine(out, "done");
  close(out);
  close(in);
  int status = 0;
  waitpid(pid, &status, 0);
  m.ok = m.ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return m;
}

TEST(KtlsIdleMemory, RssPerIdleConnectionKernelVersusUserspace) {
  SKIP_WITHOUT_KTLS();
  auto before = tlsStat();
  Measured kernel = measure(tls::KtlsMode::kRequire);
  auto mid = tlsStat();
  Measured user = measure(tls::KtlsMode::kOff);
  ASSERT_TRUE(kernel.ok);
  ASSERT_TRUE(user.ok);
  EXPECT_EQ(kernel.kernel, kIdle) << "every idle connection was offloaded";
  EXPECT_EQ(user.user, kIdle);
  EXPECT_EQ(mid["TlsTxSw"] - before["TlsTxSw"], kWarmup + kIdle);
  EXPECT_EQ(mid["TlsRxSw"] - before["TlsRxSw"], kWarmup + kIdle);
  std::printf(
      "RSS per idle connection: kernel %.1f KiB, userspace %.1f KiB (%d connections; "
      "VmRSS %ld -> %ld and %ld -> %ld KiB; RssAnon per connection %.1f and %.1f KiB)\n",
      kernel.perConnection(), user.perConnection(), kIdle, kernel.rss0, kernel.rss1, user.rss0,
      user.rss1, kernel.anonPerConnection(), user.anonPerConnection());
  std::fflush(stdout);
  // After the hand-over OpenSSL's record buffers are gone and the kernel keeps the record state,
  // so the process holds no more per idle connection than in userspace mode. Compared on
  // RssAnon: VmRSS also moves with file pages (the binary's text) paged in or out meanwhile.
  EXPECT_LE(kernel.anonPerConnection(), user.anonPerConnection() + 2.0);
}

}  // namespace
}  // namespace whorl
