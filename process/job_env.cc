#include "process/job_env.h"

#include <cstdlib>

namespace lockstep {
namespace {

Status ReadWhole(const char* name, int64_t min, int64_t fallback, int64_t* out) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    *out = fallback;
    return Status::Ok();
  }
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (*end != '\0' || v < min) {
    return Status::InvalidArgument(std::string(name) + "=" + text +
                                   ": expected a whole number >= " + std::to_string(min));
  }
  *out = v;
  return Status::Ok();
}

}  // namespace

Status ReadJobEnv(JobEnv* env) {
  *env = JobEnv();
  LOCKSTEP_RETURN_IF_ERROR(ReadWhole(kWorldSizeVar, 1, 1, &env->world_size));
  LOCKSTEP_RETURN_IF_ERROR(ReadWhole(kRankVar, 0, 0, &env->rank));
  LOCKSTEP_RETURN_IF_ERROR(ReadWhole(kLocalRankVar, 0, env->rank, &env->local_rank));
  LOCKSTEP_RETURN_IF_ERROR(ReadWhole(kMasterPortVar, 1, 29500, &env->master_port));
  const char* addr = std::getenv(kMasterAddrVar);
  if (addr != nullptr && *addr != '\0') env->master_addr = addr;
  if (env->rank >= env->world_size) {
    return Status::InvalidArgument(std::string(kRankVar) + "=" + std::to_string(env->rank) + " is not below " +
                                   kWorldSizeVar + "=" + std::to_string(env->world_size));
  }
  if (env->master_port > 65535) return Status::InvalidArgument(std::string(kMasterPortVar) + " must be below 65536");
  if (env->world_size > 1 && addr == nullptr) {
    return Status::InvalidArgument(std::string(kWorldSizeVar) + "=" + std::to_string(env->world_size) + " without " +
                                   kMasterAddrVar + ": the launcher must say where rank 0's store listens");
  }
  return Status::Ok();
}

bool IsRankOfJob() { return std::getenv(kRankVar) != nullptr; }

int64_t RankOfThisProcess() {
  const char* rank = std::getenv(kRankVar);
  return rank == nullptr ? 0 : std::atoll(rank);
}

std::vector<std::pair<std::string, std::string>> LocalRankEnv(int rank, int nproc, const std::string& port) {
  const char* omp = std::getenv("OMP_NUM_THREADS");
  const char* blas = std::getenv("OPENBLAS_NUM_THREADS");
  const std::string threads = omp != nullptr && *omp != '\0' ? omp : "1";
  return {{kRankVar, std::to_string(rank)},
          {kLocalRankVar, std::to_string(rank)},
          {kWorldSizeVar, std::to_string(nproc)},
          {kLocalWorldSizeVar, std::to_string(nproc)},
          {kMasterAddrVar, "127.0.0.1"},
          {kMasterPortVar, port},
          {"OMP_NUM_THREADS", threads},
          {"OPENBLAS_NUM_THREADS", blas != nullptr && *blas != '\0' ? blas : threads}};
}

void PreferSleepingOpenMpThreads() { ::setenv(kOmpWaitPolicyVar, "PASSIVE", /*overwrite=*/0); }

}  // namespace lockstep
