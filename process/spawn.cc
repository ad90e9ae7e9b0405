#include "process/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace lockstep {
namespace {

// This process's environment with `overrides` set: built before the fork, as the child may
// not allocate.
std::vector<std::string> ChildEnvironment(const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [key, value] : overrides) replaced = replaced || key == name;
    if (!replaced) out.push_back(entry);
  }
  for (const auto& [key, value] : overrides) out.push_back(key + "=" + value);
  return out;
}

// argv[0] as execve takes it: a path; looked up in PATH with `search` and no '/'.
std::string ExecutablePath(const std::string& name, bool search) {
  if (!search || name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t at = 0; at <= dirs.size();) {
    const size_t end = std::min(dirs.find(':', at), dirs.size());
    const std::string candidate = (end > at ? dirs.substr(at, end - at) : ".") + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = end + 1;
  }
  return name;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child: errno to the parent through `report`, then exit 127.
[[noreturn]] void ReportAndExit(int report) {
  const int err = errno;
  [[maybe_unused]] const ssize_t n = ::write(report, &err, sizeof(err));
  _exit(127);
}

// The child, between fork and exec: async-signal-safe calls only. Writes the failing
// call's errno to `report` and exits 127.
[[noreturn]] void ExecChild(const SpawnOptions& o, pid_t parent, const char* file, char* const* argv, char* const* envp,
                            int report) {
  if (o.die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);  // the parent died before the prctl
  }
  if (o.own_process_group && ::setpgid(0, 0) != 0) ReportAndExit(report);
  for (const auto& d : o.descriptors) {
    if (!d.path.empty()) {
      const int fd = ::open(d.path.c_str(), d.flags, 0644);
      if (fd < 0) ReportAndExit(report);
      if (fd != d.fd && (::dup2(fd, d.fd) < 0 || ::close(fd) != 0)) ReportAndExit(report);
    } else if (d.from >= 0) {
      if (d.from == d.fd ? ::fcntl(d.fd, F_SETFD, 0) < 0 : ::dup2(d.from, d.fd) < 0) ReportAndExit(report);
    } else {
      ::close(d.fd);
    }
  }
  ::execve(file, argv, envp);
  ReportAndExit(report);
}

}  // namespace

SpawnOptions& SpawnOptions::Open(int fd, const std::string& path, int flags) {
  descriptors.push_back({fd, path, flags, -1});
  return *this;
}
SpawnOptions& SpawnOptions::Dup(int fd, int from) {
  descriptors.push_back({fd, "", 0, from});
  return *this;
}
SpawnOptions& SpawnOptions::Close(int fd) {
  descriptors.push_back({fd, "", 0, -1});
  return *this;
}

Status Spawn(const std::vector<std::string>& argv, const SpawnOptions& options, pid_t* pid) {
  if (argv.empty()) return Status::InvalidArgument("no command to start");
  std::vector<std::string> args = argv, env = ChildEnvironment(options.env);
  const std::string file = ExecutablePath(argv[0], options.search_path);
  std::vector<char*> arg_ptrs = Pointers(args), env_ptrs = Pointers(env);
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return Status::IOError(std::string("pipe: ") + std::strerror(errno));
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child == 0) ExecChild(options, parent, file.c_str(), arg_ptrs.data(), env_ptrs.data(), report[1]);
  ::close(report[1]);
  if (child < 0) {
    ::close(report[0]);
    return Status::IOError(std::string("fork: ") + std::strerror(errno));
  }
  int err = 0;
  ssize_t n;
  while ((n = ::read(report[0], &err, sizeof(err))) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (n > 0) {  // the exec (or a descriptor before it) failed: the child exits 127
    int status = 0;
    ::waitpid(child, &status, 0);
    return Status::NotFound(argv[0] + ": cannot start: " + std::strerror(err));
  }
  *pid = child;
  return Status::Ok();
}

int SpawnAndWait(const std::vector<std::string>& argv, const SpawnOptions& options) {
  pid_t pid = 0;
  if (!Spawn(argv, options, &pid).ok()) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace lockstep
