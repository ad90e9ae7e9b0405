#include "cli/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "process/job_env.h"
#include "process/spawn.h"

namespace lockstep {
namespace {

volatile std::sig_atomic_t g_forward_signal = 0;
void RememberSignal(int sig) { g_forward_signal = sig; }

// A free TCP port on loopback for the store, unless the caller set MASTER_PORT.
std::string MasterPort() {
  if (const char* set = std::getenv(kMasterPortVar); set != nullptr && *set != '\0') return set;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 29500;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return std::to_string(port);
}

struct Rank {
  int index = 0;
  pid_t pid = -1;
  int out = -1, err = -1;          // read ends of its stdout and stderr
  std::string out_line, err_line;  // partial lines
  bool exited = false;
  int status = 0;
};

// Writes complete lines of `chunk` to `to`, each prefixed; keeps the rest in `*partial`.
void ForwardLines(const std::string& prefix, const char* chunk, size_t n, std::string* partial, FILE* to) {
  partial->append(chunk, n);
  for (size_t nl; (nl = partial->find('\n')) != std::string::npos; partial->erase(0, nl + 1)) {
    std::fprintf(to, "%s%.*s\n", prefix.c_str(), static_cast<int>(nl), partial->data());
  }
  std::fflush(to);
}

// Starts rank `index` with its stdout and stderr on the write ends `out` and `err`.
Status StartRank(const LaunchOptions& o, int index, const std::string& port, int out, int err, pid_t* pid) {
  SpawnOptions spawn;
  spawn.Dup(STDOUT_FILENO, out).Dup(STDERR_FILENO, err);
  if (index != 0 && o.inherited_fd >= 0) spawn.Close(o.inherited_fd);
  spawn.env = LocalRankEnv(index, o.nproc, port);
  // Its own process group: a terminal's Ctrl-C reaches the launcher alone, which passes it
  // on once (twice would mean "exit at once" to the rank). The job dies with its launcher.
  spawn.own_process_group = true;
  spawn.die_with_parent = true;
  std::vector<std::string> argv = o.argv;
  if (index == 0) argv.insert(argv.end(), o.rank0_argv.begin(), o.rank0_argv.end());
  return Spawn(argv, spawn, pid);
}

std::string Describe(const Rank& r) {
  if (WIFSIGNALED(r.status)) {
    const int sig = WTERMSIG(r.status);
    return "rank " + std::to_string(r.index) + " (pid " + std::to_string(r.pid) + ") was killed by signal " +
           std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "rank " + std::to_string(r.index) + " (pid " + std::to_string(r.pid) + ") exited with status " +
         std::to_string(WEXITSTATUS(r.status));
}

int ExitCodeOf(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

// `argv` without `option` and its value ("--opt V" or "--opt=V"), which go to `*removed`.
std::vector<std::string> WithoutOption(const std::vector<std::string>& argv, const std::string& option,
                                       std::vector<std::string>* removed) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == option && i + 1 < argv.size()) {
      removed->insert(removed->end(), {argv[i], argv[i + 1]});
      ++i;
    } else if (argv[i].rfind(option + "=", 0) == 0) {
      removed->push_back(argv[i]);
    } else {
      out.push_back(argv[i]);
    }
  }
  return out;
}

}  // namespace

int LaunchAsRanks(int nproc, const std::vector<std::string>& command_line) {
  LaunchOptions o;
  o.nproc = nproc;
  std::vector<std::string> dropped, rank0;
  o.argv = WithoutOption(command_line, "--nproc_per_node", &dropped);
  o.argv = WithoutOption(o.argv, "--event-fd", &rank0);
  o.argv = WithoutOption(o.argv, "--crash-at-io", &rank0);
  o.rank0_argv = rank0;
  for (size_t i = 0; i + 1 < rank0.size(); ++i) {
    if (rank0[i] == "--event-fd") o.inherited_fd = std::atoi(rank0[i + 1].c_str());
  }
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0 && !o.argv.empty()) o.argv[0] = std::string(self, static_cast<size_t>(n));
  return LaunchLocalJob(o);
}

namespace {

// Starts every rank with its output on pipes. False (after stopping the ranks started and
// naming the one that could not start) when one could not.
bool StartRanks(const LaunchOptions& o, std::vector<Rank>* ranks) {
  const std::string port = MasterPort();
  for (int i = 0; i < o.nproc; ++i) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
      std::fprintf(stderr, "lockstep train: cannot create pipes: %s\n", std::strerror(errno));
      return false;
    }
    Rank& r = (*ranks)[static_cast<size_t>(i)];
    r.index = i;
    const Status st = StartRank(o, i, port, out[1], err[1], &r.pid);
    ::close(out[1]);
    ::close(err[1]);
    r.out = out[0];
    r.err = err[0];
    if (!st.ok()) {  // the ranks started wait for this one: stop them
      std::fprintf(stderr, "lockstep train: rank %d: %s\n", i, st.message().c_str());
      for (int j = 0; j < i; ++j) ::kill((*ranks)[static_cast<size_t>(j)].pid, SIGKILL);
      for (int j = 0; j < i; ++j) ::waitpid((*ranks)[static_cast<size_t>(j)].pid, nullptr, 0);
      return false;
    }
  }
  return true;
}

// Waits up to 100 ms for the ranks' output and forwards what came: rank 0's stdout as is
// (the command's result), every other line prefixed "[rank R] " on stderr.
void ForwardOutput(std::vector<Rank>* ranks) {
  std::vector<pollfd> fds;
  std::vector<std::pair<Rank*, bool>> owners;  // (rank, is stdout)
  for (Rank& r : *ranks) {
    if (r.out >= 0) fds.push_back({r.out, POLLIN, 0}), owners.emplace_back(&r, true);
    if (r.err >= 0) fds.push_back({r.err, POLLIN, 0}), owners.emplace_back(&r, false);
  }
  ::poll(fds.data(), fds.size(), 100);
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    auto [r, is_out] = owners[i];
    char buf[65536];
    const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
    if (n <= 0) {
      ::close(fds[i].fd);
      (is_out ? r->out : r->err) = -1;
      continue;
    }
    if (is_out && r->index == 0) {
      std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
      std::fflush(stdout);
    } else {
      ForwardLines("[rank " + std::to_string(r->index) + "] ", buf, static_cast<size_t>(n),
                   is_out ? &r->out_line : &r->err_line, stderr);
    }
  }
}

// The rank a failed job is reported by: one a signal killed (its peers then fail on their
// next collective), else the lowest rank that failed (rank 0's error is the one the others
// report as "rank 0 could not ..."); `failed` when none other qualifies.
const Rank* CauseOfFailure(const std::vector<Rank>& ranks, int stopped_code, const Rank* failed) {
  const Rank* cause = nullptr;
  for (const Rank& r : ranks) {
    if (r.status != 0 && !(WIFEXITED(r.status) && WEXITSTATUS(r.status) == stopped_code && stopped_code != 0)) {
      if (cause == nullptr || (WIFSIGNALED(r.status) && !WIFSIGNALED(cause->status))) cause = &r;
    }
  }
  return cause != nullptr ? cause : failed;
}

}  // namespace

int LaunchLocalJob(const LaunchOptions& o) {
  std::vector<Rank> ranks(static_cast<size_t>(o.nproc));
  struct sigaction forward {};
  forward.sa_handler = RememberSignal;
  ::sigaction(SIGTERM, &forward, nullptr);
  ::sigaction(SIGINT, &forward, nullptr);
  if (!StartRanks(o, &ranks)) return 127;
  if (o.inherited_fd >= 0) ::close(o.inherited_fd);  // rank 0 holds it now: its EOF is the job's

  const Rank* failed = nullptr;
  auto failed_at = std::chrono::steady_clock::now();
  bool killed = false;
  int forwarded = 0, stopped_code = 0;  // a stop signal passed on, and the code ranks stopped with
  size_t running = ranks.size();
  while (running > 0 ||
         std::any_of(ranks.begin(), ranks.end(), [](const Rank& r) { return r.out >= 0 || r.err >= 0; })) {
    if (const int sig = g_forward_signal; sig != 0) {
      g_forward_signal = 0;
      forwarded = sig;
      for (const Rank& r : ranks)
        if (!r.exited) ::kill(r.pid, sig);
    }
    ForwardOutput(&ranks);
    for (Rank& r : ranks) {
      if (r.exited || ::waitpid(r.pid, &r.status, WNOHANG) != r.pid) continue;
      r.exited = true;
      --running;
      // A rank that stopped on the signal passed on to it (128 + signal) did what was asked.
      if (forwarded != 0 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 128 + forwarded) {
        stopped_code = 128 + forwarded;
        continue;
      }
      if (failed == nullptr && r.status != 0) {
        failed = &r;
        failed_at = std::chrono::steady_clock::now();
      }
    }
    const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - failed_at).count();
    if (failed != nullptr && !killed && running > 0 && since > o.grace_s) {
      for (const Rank& r : ranks)
        if (!r.exited) ::kill(r.pid, SIGKILL);
      killed = true;
    }
  }
  if (failed == nullptr) return stopped_code;
  const Rank* cause = CauseOfFailure(ranks, stopped_code, failed);
  std::fprintf(stderr, "lockstep train: the job failed: %s%s\n", Describe(*cause).c_str(),
               killed ? "; the other ranks were killed after the grace period" : "");
  return ExitCodeOf(cause->status);
}

}  // namespace lockstep
