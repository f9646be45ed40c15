#include "tools/loadgen/server_cpu.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace whorl::loadgen {
namespace {

// utime, stime, cutime, cstime of /proc/<pid>/stat, in seconds (the whole thread group).
Status addStat(int pid, ProcessSample* s) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  auto close = text.rfind(')');
  if (!f.good() && text.empty()) {
    return Status::invalidArgument("--server-pid: no process " + std::to_string(pid) +
                                   " (cannot read /proc/" + std::to_string(pid) + "/stat)");
  }
  if (close == std::string::npos) return Status(Status::Code::kIo, "cannot parse /proc/<pid>/stat");
  std::istringstream in(text.substr(close + 2));
  std::string field;
  std::vector<std::string> fields;
  while (in >> field) fields.push_back(field);
  // After ") ": state is field 3 of stat(5), so field N is fields[N - 3]; utime..cstime are 14..17.
  if (fields.size() < 15) return Status(Status::Code::kIo, "short /proc/<pid>/stat");
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  s->userSeconds += (std::stod(fields[11]) + std::stod(fields[13])) / ticks;
  s->systemSeconds += (std::stod(fields[12]) + std::stod(fields[14])) / ticks;
  return Status::ok();
}

std::vector<std::string> taskIds(int pid) {
  std::vector<std::string> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') out.emplace_back(e->d_name);
    }
    closedir(d);
  }
  return out;
}

// Context switches of every thread, and the pids of the children they started.
void addTasks(int pid, ProcessSample* s, std::vector<int>* children) {
  std::string base = "/proc/" + std::to_string(pid) + "/task/";
  for (const auto& tid : taskIds(pid)) {
    std::ifstream status(base + tid + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) {
        s->voluntarySwitches += std::stoull(line.substr(line.find(':') + 1));
      } else if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        s->involuntarySwitches += std::stoull(line.substr(line.find(':') + 1));
      }
    }
    std::ifstream kids(base + tid + "/children");
    int child;
    while (kids >> child) children->push_back(child);
  }
}

}  // namespace

Result<ProcessSample> sampleProcessTree(int pid) {
  ProcessSample s;
  WHORL_RETURN_IF_ERROR(addStat(pid, &s));
  std::vector<int> children;
  addTasks(pid, &s, &children);
  for (int child : children) {
    // A child that exits between the listing and the read is no longer the server's.
    if (addStat(child, &s).isOk()) {
      std::vector<int> grandchildren;
      addTasks(child, &s, &grandchildren);
    }
  }
  return s;
}

void WindowSampler::take(ProcessSample* into) {
  auto s = sampleProcessTree(pid_);
  if (!s) {
    if (error_.empty()) error_ = s.status().message();
    return;
  }
  *into = *s;
}

void WindowSampler::begin() {
  std::lock_guard<std::mutex> lock(mu_);
  if (begun_++ == 0) {
    take(&window_.start);
    haveStart_ = error_.empty();
  }
}

void WindowSampler::end() {
  std::lock_guard<std::mutex> lock(mu_);
  if (++ended_ == shards_) {
    take(&window_.end);
    haveEnd_ = error_.empty();
  }
}

std::optional<CpuWindow> WindowSampler::window() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!haveStart_ || !haveEnd_) return std::nullopt;
  return window_;
}

std::string WindowSampler::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!error_.empty()) return error_;
  return ended_ < shards_ ? "the measured window did not end" : "";
}

}  // namespace whorl::loadgen
