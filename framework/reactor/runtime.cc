#include "framework/reactor/runtime.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <future>

#include "framework/base/log.h"

namespace whorl::reactor {

namespace {
std::vector<int> onlineCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
    }
  }
  if (cpus.empty()) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < (n > 0 ? n : 1); ++i) cpus.push_back(static_cast<int>(i));
  }
  return cpus;
}
}  // namespace

Runtime::Runtime(RuntimeOptions options) : options_(options) {
  // A peer that closes while we write must not kill the process; sends use MSG_NOSIGNAL too.
  signal(SIGPIPE, SIG_IGN);
  std::vector<int> cpus = onlineCpus();
  int n = options_.shards > 0 ? options_.shards : static_cast<int>(cpus.size());
  for (int i = 0; i < n; ++i) {
    ShardOptions so;
    so.index = i;
    so.cpu = options_.pinThreads ? cpus[static_cast<size_t>(i) % cpus.size()] : -1;
    so.ring = options_.ring;
    so.buffers = options_.buffers;
    so.mailboxCapacity = options_.mailboxCapacity;
    shards_.push_back(std::make_unique<Shard>(this, so));
  }
  stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

Runtime::~Runtime() {
  if (started_) {
    stop(std::chrono::milliseconds(0));
    join();
  }
  if (stopFd_ >= 0) close(stopFd_);
}

Status Runtime::start() {
  if (started_) return Status::ok();
  started_ = true;
  std::vector<std::promise<Status>> ready(shards_.size());
  // Shard threads never take SIGINT/SIGTERM/SIGHUP: run() reads them through a signalfd (or, for
  // SIGHUP without a reload hook, the main thread takes its default action). Threads inherit the
  // mask in force when they are created.
  sigset_t block, saved;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &block, &saved);
  for (size_t i = 0; i < shards_.size(); ++i) {
    Shard* shard = shards_[i].get();
    std::promise<Status>* p = &ready[i];
    threads_.emplace_back([shard, p] { shard->run([p](Status s) { p->set_value(std::move(s)); }); });
  }
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  Status first;
  for (auto& p : ready) {
    Status s = p.get_future().get();
    if (!s.isOk() && first.isOk()) first = s;
  }
  if (!first.isOk()) {
    stop(std::chrono::milliseconds(0));
    join();
    return first;
  }
  ringMode_ = shards_[0]->ringMode();
  WHORL_LOG(kInfo, "whorl: %zu shard%s, io_uring set-up: %s", shards_.size(),
            shards_.size() == 1 ? "" : "s", ringMode_.c_str());
  return Status::ok();
}

void Runtime::stop() { stop(options_.drainTimeout); }

void Runtime::stop(std::chrono::milliseconds drain) {
  stopRequested_.store(true);
  for (auto& s : shards_) s->beginStop(drain);
  uint64_t one = 1;
  ssize_t n = write(stopFd_, &one, sizeof(one));
  (void)n;
}

void Runtime::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

int Runtime::run(RunHooks hooks) {
  // Block the stop signals before the shard threads start so that they inherit the mask and the
  // signals are read here through a signalfd, not delivered to a random shard.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (hooks.reload) sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sigFd = signalfd(-1, &set, SFD_CLOEXEC);

  Status s = start();
  if (!s.isOk()) {
    WHORL_LOG(kError, "cannot start: %s", s.message().c_str());
    if (sigFd >= 0) close(sigFd);
    return 1;
  }
  if (hooks.ready) hooks.ready();
  bool stopAnnounced = false;
  auto announceStop = [&] {
    if (!stopAnnounced && hooks.stopping) hooks.stopping();
    stopAnnounced = true;
  };
  // Threads that have exited (all shards stopped) are detected by joining in a helper thread.
  int doneFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::thread joiner([this, doneFd] {
    join();
    uint64_t one = 1;
    ssize_t n = write(doneFd, &one, sizeof(one));
    (void)n;
  });
  int signals = 0;
  for (;;) {
    pollfd fds[3] = {{sigFd, POLLIN, 0}, {stopFd_, POLLIN, 0}, {doneFd, POLLIN, 0}};
    int rc = poll(fds, 3, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (fds[2].revents & POLLIN) break;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      bool got = read(sigFd, &info, sizeof(info)) == sizeof(info);
      if (got && info.ssi_signo == SIGHUP) {
        WHORL_LOG(kInfo, "SIGHUP: reloading");
        hooks.reload();
      } else if (got) {
        ++signals;
        announceStop();
        if (signals == 1) {
          WHORL_LOG(kInfo, "%s: stopping; open connections have %lld ms to finish (again to force)",
                    strsignal(static_cast<int>(info.ssi_signo)),
                    static_cast<long long>(options_.drainTimeout.count()));
          stop(options_.drainTimeout);
        } else {
          WHORL_LOG(kInfo, "%s again: closing all connections now",
                    strsignal(static_cast<int>(info.ssi_signo)));
          stop(std::chrono::milliseconds(0));
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      ssize_t n = read(stopFd_, &v, sizeof(v));
      (void)n;
      announceStop();
    }
  }
  joiner.join();
  close(doneFd);
  if (sigFd >= 0) close(sigFd);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  WHORL_LOG(kInfo, "stopped");
  return 0;
}

uint64_t Runtime::totalAccepted() const {
  uint64_t n = 0;
  for (const auto& s : shards_) n += s->stats().accepted.load(std::memory_order_relaxed);
  return n;
}

uint64_t Runtime::totalOpen() const {
  uint64_t n = 0;
  for (const auto& s : shards_) n += s->stats().open.load(std::memory_order_relaxed);
  return n;
}

}  // namespace whorl::reactor
