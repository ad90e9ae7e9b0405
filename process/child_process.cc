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
                           const ForkedMain& run_in_fork) {
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
    out->reset(new ChildProcess(pid, read_fd));
    return Status::Ok();
  }
  SpawnOptions spawn;
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
  out->reset(new ChildProcess(pid, read_fd));
  return Status::Ok();
}

ChildProcess::~ChildProcess() {
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

void ChildProcess::Kill() {
  if (!reaped_) ::kill(pid_, SIGKILL);
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

Status ChildProcess::Wait(int* exit_code, int* signal) {
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) return Status::IOError(std::string("waitpid: ") + std::strerror(errno));
  }
  reaped_ = true;
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  *signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
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
