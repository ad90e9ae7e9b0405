// `lockstep train --nproc_per_node N`: a launcher for one machine, by torchrun's contract.
// It starts N rank processes of the same command (without --nproc_per_node) with RANK,
// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, forwards their
// output (rank 0's stdout as is: it is the command's result; every other line prefixed
// "[rank R] " on stderr), passes SIGTERM and SIGINT on to every rank, and when one rank
// fails stops the others: they get a grace period to notice on their own, then SIGKILL.
// Each rank dies with the launcher (PR_SET_PDEATHSIG), so killing the launcher kills the
// job. As torchrun does, it sets OMP_NUM_THREADS=1 for the ranks unless it is set (and
// OPENBLAS_NUM_THREADS to match). No LibTorch here.
#pragma once

#include <string>
#include <vector>

namespace lockstep {

struct LaunchOptions {
  int nproc = 1;
  // The command every rank runs; argv[0] is the executable's path.
  std::vector<std::string> argv;
  // Arguments only rank 0 gets (verify-resume's --event-fd and --crash-at-io): the job
  // reports its events and its crashes through rank 0.
  std::vector<std::string> rank0_argv;
  int inherited_fd = -1;  // a descriptor only rank 0 keeps open (the event pipe), -1: none
  double grace_s = 10;    // after a rank fails, how long the others get before SIGKILL
};

// Runs the job and returns the exit status for the launcher: 0 when every rank exited 0;
// otherwise the first failed rank's (128 + signal for one killed by a signal), after
// naming it on stderr.
int LaunchLocalJob(const LaunchOptions& options);

// Runs `command_line` (this process's own arguments; argv[0] is replaced by this
// executable) as `nproc` ranks: without --nproc_per_node, and with verify-resume's
// --event-fd and --crash-at-io given to rank 0 alone. Returns LaunchLocalJob's status.
int LaunchAsRanks(int nproc, const std::vector<std::string>& command_line);

}  // namespace lockstep
