#include "trainer/blas_info.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>

namespace lockstep {
namespace {

template <typename Fn>
Fn Lookup(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_DEFAULT, name));
}

// MKL exports its thread query under this name; OpenBLAS does not.
bool MklIsLoaded() { return Lookup<int (*)()>("MKL_Get_Max_Threads") != nullptr; }

// The branch that runs on this CPU and gives the same bits on every run: AVX2 (MKL's AVX-512
// paths vary from run to run; so does its default, AUTO), else the SSE2-level COMPATIBLE.
const char* ReproducibleMklBranch() {
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx2")) return "AVX2";
#endif
  return "COMPATIBLE";
}

}  // namespace

nlohmann::json BlasInfo() {
  nlohmann::json info = {{"library", nullptr}, {"config", nullptr}, {"threads", nullptr}, {"branch", nullptr}};
  Dl_info where;
  if (void* gemm = ::dlsym(RTLD_DEFAULT, "sgemm_");
      gemm != nullptr && ::dladdr(gemm, &where) != 0 && where.dli_fname != nullptr) {
    char resolved[PATH_MAX];
    info["library"] = ::realpath(where.dli_fname, resolved) != nullptr ? resolved : where.dli_fname;
  }
  if (auto config = Lookup<char* (*)()>("openblas_get_config")) info["config"] = config();
  if (auto threads = Lookup<int (*)()>("openblas_get_num_threads")) {
    info["threads"] = threads();
  } else if (auto mkl = Lookup<int (*)()>("MKL_Get_Max_Threads")) {
    info["threads"] = mkl();
    const char* branch = std::getenv(kMklBranchVar);
    if (branch != nullptr && *branch != '\0') info["branch"] = branch;
  }
  return info;
}

bool SetBlasThreads(int threads) {
  if (auto set = Lookup<void (*)(int)>("openblas_set_num_threads")) {
    set(threads);
    return true;
  }
  if (auto set = Lookup<void (*)(int)>("MKL_Set_Num_Threads")) {
    set(threads);
    return true;
  }
  return false;
}

bool PinBlasBranch() {
  if (!MklIsLoaded()) return false;
  const char* set = std::getenv(kMklBranchVar);
  if (set == nullptr || *set == '\0') ::setenv(kMklBranchVar, ReproducibleMklBranch(), /*overwrite=*/1);
  return true;
}

nlohmann::json BlasChanges(const nlohmann::json& before, const nlohmann::json& now) {
  nlohmann::json rows = nlohmann::json::array();
  if (!before.is_object() || !now.is_object()) return rows;
  for (const char* key : {"library", "config", "threads", "branch"}) {
    const nlohmann::json was = before.value(key, nlohmann::json()), is = now.value(key, nlohmann::json());
    if (was.is_null() || was == is) continue;
    rows.push_back({{"setting", std::string("blas.") + key}, {"checkpoint", was}, {"now", is}});
  }
  return rows;
}

}  // namespace lockstep
