// A data-parallel job's environment, by torchrun's contract: the variables a launcher gives
// each rank (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
// written by `lockstep train --nproc_per_node` and read by the trainer, replay and
// verify-resume, named here once. No LibTorch here.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "formats/status.h"

namespace lockstep {

constexpr char kRankVar[] = "RANK";
constexpr char kLocalRankVar[] = "LOCAL_RANK";
constexpr char kWorldSizeVar[] = "WORLD_SIZE";
constexpr char kLocalWorldSizeVar[] = "LOCAL_WORLD_SIZE";
constexpr char kMasterAddrVar[] = "MASTER_ADDR";
constexpr char kMasterPortVar[] = "MASTER_PORT";

struct JobEnv {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
};

// Reads this process's job variables. Unset WORLD_SIZE means one process (rank 0). A
// malformed or inconsistent value is InvalidArgument naming the variable.
Status ReadJobEnv(JobEnv* env);

// OpenMP's wait policy for a training process, set before LibTorch loads (libgomp reads it
// once, at load): PASSIVE, so an intra-op thread that finished its share sleeps instead of
// spinning on the core a BLAS thread needs. Measured on 2 cores (Debian's LibTorch 1.13):
// the gpt at 4 x 256 trains in 3.07 s with 2 threads instead of 7.3 s, and no size slower.
// A user's own OMP_WAIT_POLICY is kept. The `lockstep` front end sets it for the process it
// hands training to; `lockstep bench` for its suites.
constexpr char kOmpWaitPolicyVar[] = "OMP_WAIT_POLICY";
void PreferSleepingOpenMpThreads();

// True when a launcher started this process as a rank of a job (RANK is set).
bool IsRankOfJob();

// This process's rank in its job: RANK, 0 when it is not a rank of one.
int64_t RankOfThisProcess();

// The variables of rank `rank` of a one-machine job of `nproc` ranks whose store listens on
// loopback at `port`; with torchrun's rule that N ranks on one machine get one intra-op
// thread each unless OMP_NUM_THREADS says otherwise (and OpenBLAS, with its own pool, the
// same number).
std::vector<std::pair<std::string, std::string>> LocalRankEnv(int rank, int nproc, const std::string& port);

}  // namespace lockstep
