// Subprocess: runs a real peer (openssl s_client / s_server, python3) for loopback tests.
//
//   Subprocess p({"openssl", "s_client", "-connect", "127.0.0.1:" + port, "-quiet"});
//   p.writeStdin("hello\n");
//   std::string out = p.readStdoutUntil("hello", 10s);
//   p.closeStdin();
//   int status = p.wait(10s);     // exit code, or -1 on timeout (the process is then killed)
//
// Owns the child: the destructor kills it if it is still running. stderr is merged into stdout.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace testutil {

class Subprocess {
 public:
  explicit Subprocess(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(out[1], 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
  }
  ~Subprocess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    closeStdin();
    if (stdout_ >= 0) close(stdout_);
  }
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void writeStdin(const std::string& s) {
    size_t off = 0;
    while (off < s.size() && stdin_ >= 0) {
      ssize_t n = write(stdin_, s.data() + off, s.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }
  void closeStdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }
  // Reads output until `needle` appears, EOF, or the timeout; returns everything read so far.
  std::string readStdoutUntil(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !readSome(static_cast<int>(left.count()))) break;
    }
    return output_;
  }
  std::string readAll(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !readSome(static_cast<int>(left.count()))) break;
    }
    return output_;
  }
  const std::string& output() const { return output_; }
  // Exit status (or 128+signal), -1 if it did not exit in time (then it is killed).
  int wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      // Drain output so a chatty child cannot block on a full pipe.
      readSome(10);
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        exited_ = true;
        return -1;
      }
    }
    exited_ = true;
    readAll(std::chrono::milliseconds(100));
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }

 private:
  bool readSome(int timeoutMs) {
    if (stdout_ < 0) return false;
    pollfd p{stdout_, POLLIN, 0};
    int rc = poll(&p, 1, timeoutMs);
    if (rc <= 0) return rc == 0 && timeoutMs < 50;  // short polls keep waiting
    char buf[8192];
    ssize_t n = read(stdout_, buf, sizeof(buf));
    if (n <= 0) {
      close(stdout_);
      stdout_ = -1;
      return false;
    }
    output_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  bool exited_ = false;
  std::string output_;
};

}  // namespace testutil
