// Starting a child process, one way for the whole project: verify-resume's children, the
// data-parallel launcher's ranks, the benchmarks' Python peer and suites. fork + execve with
// the child's descriptors, environment and process group prepared first; between the fork
// and the exec only async-signal-safe calls, so a parent with threads (LibTorch's pools) is
// safe. An exec that fails is reported to the parent, not left to the child to print.
// No LibTorch here.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "formats/status.h"

namespace lockstep {

struct SpawnOptions {
  // The child's descriptors, set up in this order before the exec. Every other descriptor
  // the parent opened with O_CLOEXEC stays closed in the child, as usual.
  struct Descriptor {
    int fd = -1;
    std::string path;  // open(path, flags, 0644) as fd, when not empty
    int flags = 0;
    int from = -1;  // else dup2(from, fd); -1 with no path: close(fd)
  };
  std::vector<Descriptor> descriptors;
  SpawnOptions& Open(int fd, const std::string& path, int flags);  // /dev/null works too
  SpawnOptions& Dup(int fd, int from);
  SpawnOptions& Close(int fd);

  // Variables set in the child's environment (over this process's, which it inherits).
  std::vector<std::pair<std::string, std::string>> env;
  bool own_process_group = false;  // setpgid(0, 0): a terminal's Ctrl-C reaches the parent alone
  bool die_with_parent = false;    // PR_SET_PDEATHSIG SIGKILL: the child dies with this process
  bool search_path = false;        // argv[0] without a '/' is looked up in PATH
};

// Starts argv (argv[0] the executable) as `options` say; `*pid` is the child's. NotFound
// naming argv[0] when it cannot be executed (the exec's own error), IOError when the fork
// or a descriptor failed.
Status Spawn(const std::vector<std::string>& argv, const SpawnOptions& options, pid_t* pid);

// Spawn, then wait for it: its exit status; -1 when it could not start or a signal ended it.
int SpawnAndWait(const std::vector<std::string>& argv, const SpawnOptions& options);

}  // namespace lockstep
