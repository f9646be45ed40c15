// ServerCpu: the CPU time and wake-ups of the server under test (`loadgen --server-pid PID`),
// sampled at the edges of the measured window, so that CPU per request covers exactly the
// requests the report counts (no warm-up, no connection set-up, no shutdown).
//
//   WindowSampler sampler(pid, shards);      // main thread, before the shards start
//   sampler.begin();  ...  sampler.end();    // each shard once: first begin and last end sample
//   if (auto w = sampler.window()) report(w->cpuSeconds(), w->wakeups());
//
// A sample covers the process, every thread of it and its live children with their threads
// (nginx's master and workers), plus children it has reaped. Wake-ups are voluntary context
// switches: each time a thread slept waiting for work and was woken. Reads /proc; owns nothing.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "framework/base/status.h"

namespace whorl::loadgen {

struct ProcessSample {
  double userSeconds = 0;
  double systemSeconds = 0;
  uint64_t voluntarySwitches = 0;
  uint64_t involuntarySwitches = 0;
};

// The process tree rooted at pid, now. Fails when pid does not exist or /proc cannot be read.
Result<ProcessSample> sampleProcessTree(int pid);

struct CpuWindow {
  ProcessSample start;
  ProcessSample end;
  double userSeconds() const { return end.userSeconds - start.userSeconds; }
  double systemSeconds() const { return end.systemSeconds - start.systemSeconds; }
  double cpuSeconds() const { return userSeconds() + systemSeconds(); }
  uint64_t wakeups() const { return end.voluntarySwitches - start.voluntarySwitches; }
  uint64_t preemptions() const { return end.involuntarySwitches - start.involuntarySwitches; }
};

// Thread-safe: the first begin() and the last end() (of `shards` calls each) take the samples.
class WindowSampler {
 public:
  WindowSampler(int pid, int shards) : pid_(pid), shards_(shards) {}
  void begin();
  void end();
  // Both samples, or nothing if either failed or the window never closed; error() says why.
  std::optional<CpuWindow> window() const;
  std::string error() const;

 private:
  void take(ProcessSample* into);

  const int pid_;
  const int shards_;
  mutable std::mutex mu_;
  int begun_ = 0;
  int ended_ = 0;
  bool haveStart_ = false;
  bool haveEnd_ = false;
  CpuWindow window_;
  std::string error_;
};

}  // namespace whorl::loadgen
