#include "process/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "formats/file_util.h"
#include "process/job_env.h"
#include "process/spawn.h"

namespace fs = std::filesystem;

namespace lockstep {

namespace {

// In a forked child: the descriptors Spawn would have set up, then the main.
[[noreturn]] void RunForked(const std::vector<std::string>& argv, const std::string& stdout_path,
                            const std::string& stderr_path, int write_fd, const ChildProcess::ForkedMain& main) {
  const int in = ::open("/dev/null", O_RDONLY);
  const int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0 || err < 0 || ::dup2(in, STDIN_FILENO) < 0 || ::dup2(out, STDOUT_FILENO) < 0 ||
      ::dup2(err, STDERR_FILENO) < 0 || ::dup2(write_fd, ChildProcess::kEventFd) < 0) {
    ::_exit(127);
  }
  const int code = main(argv);
  std::fflush(nullptr);  // _exit skips the parent's atexit handlers, and stdio's own flush
  ::_exit(code);
}

}  // namespace

Status ChildProcess::Start(const std::vector<std::string>& argv, const std::string& stdout_path,
                           const std::string& stderr_path, std::unique_ptr<ChildProcess>* out,
                           const ForkedMain& run_in_fork, bool own_group) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::IOError(std::string("pipe: ") + std::strerror(errno));
  // Keep the pipe's ends above kEventFd, so dup2 onto kEventFd always makes a fresh,
  // inheritable descriptor.
  int read_fd = ::fcntl(fds[0], F_DUPFD_CLOEXEC, 10), write_fd = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
  ::close(fds[0]);
  ::close(fds[1]);
  if (read_fd < 0 || write_fd < 0) return Status::IOError(std::string("fcntl: ") + std::strerror(errno));

  if (run_in_fork) {
    std::fflush(nullptr);  // or the child would write the parent's buffered output again
    const pid_t pid = ::fork();
    if (pid == 0) RunForked(argv, stdout_path, stderr_path, write_fd, run_in_fork);
    ::close(write_fd);
    if (pid < 0) {
      ::close(read_fd);
      return Status::IOError(std::string("fork: ") + std::strerror(errno));
    }
    out->reset(new ChildProcess(pid, read_fd, false));
    return Status::Ok();
  }
  SpawnOptions spawn;
  spawn.own_process_group = own_group;
  spawn.Open(STDIN_FILENO, "/dev/null", O_RDONLY)
      .Open(STDOUT_FILENO, stdout_path, O_WRONLY | O_CREAT | O_TRUNC)
      .Open(STDERR_FILENO, stderr_path, O_WRONLY | O_CREAT | O_APPEND)
      .Dup(kEventFd, write_fd);
  pid_t pid = 0;
  const Status st = Spawn(argv, spawn, &pid);
  ::close(write_fd);
  if (!st.ok()) {
    ::close(read_fd);
    return st;
  }
  // Also from this side, so a signal to the group right after the start cannot miss it.
  if (own_group) ::setpgid(pid, pid);
  out->reset(new ChildProcess(pid, read_fd, own_group));
  return Status::Ok();
}

ChildProcess::~ChildProcess() {
  if (own_group_) ::kill(-pid_, SIGKILL);  // the leader may be gone and its workers not
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
  ::close(event_fd_);
}

ChildProcess::Next ChildProcess::NextEvent(double timeout_s, std::string* name, int64_t* step) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (true) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      const std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      const size_t space = line.find(' ');
      *name = line.substr(0, space);
      *step = space == std::string::npos ? 0 : std::strtoll(line.c_str() + space + 1, nullptr, 10);
      return Next::kEvent;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Next::kTimeout;
    struct pollfd p = {event_fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return Next::kTimeout;
    char chunk[4096];
    const ssize_t n = ::read(event_fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Next::kEnd;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

void ChildProcess::Signal(int sig) {
  if (own_group_) {
    ::kill(-pid_, sig);
  } else if (!reaped_) {
    ::kill(pid_, sig);
  }
}

namespace {

// The live processes (zombies are not) of process group `group`, from /proc/<pid>/stat:
// "pid (comm) state ppid pgrp ...", comm possibly holding spaces and parentheses.
std::vector<pid_t> LiveMembers(pid_t group) {
  std::vector<pid_t> live;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long long ppid = 0, pgrp = 0;
    if (!(rest >> state >> ppid >> pgrp)) continue;
    if (pgrp == group && state != 'Z' && state != 'X') live.push_back(static_cast<pid_t>(std::stoll(name)));
  }
  return live;
}

}  // namespace

Status ChildProcess::EndGroup(double timeout_s, std::vector<pid_t>* survivors) {
  survivors->clear();
  if (!own_group_) return Status::Ok();
  *survivors = LiveMembers(pid_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (true) {
    ::kill(-pid_, SIGKILL);
    const std::vector<pid_t> live = LiveMembers(pid_);
    if (live.empty()) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      std::string pids;
      for (pid_t p : live) pids += (pids.empty() ? "" : ", ") + std::to_string(p);
      return Status::IOError("process group " + std::to_string(pid_) + " still has live processes (" + pids +
                             ") after SIGKILL");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

std::string ReadSmallFile(const std::string& path) {
  std::string text;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), f)) > 0;) text.append(buf, n);
    std::fclose(f);
  }
  return text;
}

}  // namespace

bool ChildProcess::KillRank(int rank) {
  if (reaped_) return false;
  const std::string nul(1, '\0');
  const std::string wanted = nul + kRankVar + "=" + std::to_string(rank) + nul;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string stat = ReadSmallFile(e.path().string() + "/stat");
    const size_t close = stat.rfind(')');  // "pid (comm) state ppid ..."
    if (close == std::string::npos) continue;
    long long ppid = -1;
    if (std::sscanf(stat.c_str() + close + 1, " %*c %lld", &ppid) != 1 || ppid != pid_) continue;
    const std::string env_block = nul + ReadSmallFile(e.path().string() + "/environ");
    if (env_block.find(wanted) == std::string::npos) continue;
    return ::kill(static_cast<pid_t>(std::stoll(e.path().filename().string())), SIGKILL) == 0;
  }
  return false;
}

bool ChildProcess::Exited() {
  if (reaped_) return true;
  if (::waitpid(pid_, &status_, WNOHANG) != pid_) return false;
  reaped_ = true;
  return true;
}

Status ChildProcess::Wait(int* exit_code, int* signal) {
  while (!reaped_ && ::waitpid(pid_, &status_, 0) < 0) {
    if (errno != EINTR) return Status::IOError(std::string("waitpid: ") + std::strerror(errno));
  }
  reaped_ = true;
  *exit_code = WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  *signal = WIFSIGNALED(status_) ? WTERMSIG(status_) : 0;
  return Status::Ok();
}

std::string LogTail(const std::string& path, int lines) {
  constexpr uint64_t kMaxBytes = 2048;
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  std::string text;
  if (ec || size == 0 ||
      !ReadFileRange(path, size > kMaxBytes ? size - kMaxBytes : 0, std::min(size, kMaxBytes), &text).ok()) {
    return "";
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  size_t from = text.size();  // ends as the newline before the first line kept, or npos
  for (int n = 0; n < lines && from != std::string::npos; ++n)
    from = from == 0 ? std::string::npos : text.rfind('\n', from - 1);
  if (from != std::string::npos) text = text.substr(from + 1);
  std::string out;
  for (size_t at = 0; at < text.size();) {
    const size_t end = std::min(text.find('\n', at), text.size());
    out += "\n    " + text.substr(at, end - at);
    at = end + 1;
  }
  return out;
}

}  // namespace lockstep
