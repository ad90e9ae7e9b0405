// A child process (a `lockstep train`) that reports progress on an event pipe and can be
// SIGKILLed at a chosen moment. POSIX only; no LibTorch.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "formats/status.h"

namespace lockstep {

class ChildProcess {
 public:
  // The child sees the write end of its event pipe as this descriptor.
  static constexpr int kEventFd = 3;

  // Starts `argv` (argv[0] is the executable's path) with stdout written to `stdout_path`
  // (truncated) and stderr appended to `stderr_path`. With `run_in_fork`, the child is a
  // fork of this process that calls run_in_fork(argv) and exits with its result, instead of
  // exec'ing argv[0]; the caller must have no threads whose locks the child could need.
  // With `own_group`, the child leads a process group of its own, and Signal, Kill and
  // EndGroup reach every process in it (a launcher such as torchrun and its workers).
  using ForkedMain = std::function<int(const std::vector<std::string>& argv)>;
  static Status Start(const std::vector<std::string>& argv, const std::string& stdout_path,
                      const std::string& stderr_path, std::unique_ptr<ChildProcess>* out,
                      const ForkedMain& run_in_fork = {}, bool own_group = false);
  ~ChildProcess();  // a child still running is killed (its group with it) and reaped

  enum class Next { kEvent, kEnd, kTimeout };
  // Waits up to `timeout_s` for the next event line "<name> <step>". kEnd once the child
  // has closed the pipe (it exited, or was killed).
  Next NextEvent(double timeout_s, std::string* name, int64_t* step);

  void Kill() { Signal(SIGKILL); }  // now
  void Signal(int sig);             // to the child, or to its whole group (own_group)
  // For a child of its own group, once it has ended: SIGKILLs what of the group still lives
  // (workers its launcher left behind) and waits until none does, up to `timeout_s`.
  // `*survivors` gets the pids found alive; IOError naming them when one outlives the wait.
  Status EndGroup(double timeout_s, std::vector<pid_t>* survivors);
  // The child is a data-parallel job's launcher: SIGKILLs its rank `rank` (found by the
  // RANK in its environment), now. False when there is no such rank.
  bool KillRank(int rank);

  // Whether the child has ended (then reaped; Wait gives its status).
  bool Exited();
  // Reaps the child. `*exit_code` is its exit status, or -1 when a signal ended it (then
  // `*signal` names it).
  Status Wait(int* exit_code, int* signal);

  pid_t pid() const { return pid_; }

 private:
  ChildProcess(pid_t pid, int event_fd, bool own_group) : pid_(pid), event_fd_(event_fd), own_group_(own_group) {}
  pid_t pid_;
  int event_fd_;
  bool own_group_;
  bool reaped_ = false;
  int status_ = 0;  // waitpid's, once reaped
  std::string buffer_;
};

// The last `lines` lines a child wrote to the log at `path` (at most 2 KiB of them), each
// indented, for an error message that names the log: the reason a command failed is
// usually its last words. "" when the log is empty or unreadable.
std::string LogTail(const std::string& path, int lines = 6);

}  // namespace lockstep
