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

}  // namespace

nlohmann::json BlasInfo() {
  nlohmann::json info = {{"library", nullptr}, {"config", nullptr}, {"threads", nullptr}};
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

nlohmann::json BlasChanges(const nlohmann::json& before, const nlohmann::json& now) {
  nlohmann::json rows = nlohmann::json::array();
  if (!before.is_object() || !now.is_object()) return rows;
  for (const char* key : {"library", "config", "threads"}) {
    const nlohmann::json was = before.value(key, nlohmann::json()), is = now.value(key, nlohmann::json());
    if (was.is_null() || was == is) continue;
    rows.push_back({{"setting", std::string("blas.") + key}, {"checkpoint", was}, {"now", is}});
  }
  return rows;
}

}  // namespace lockstep
