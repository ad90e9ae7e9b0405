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
  if (void* gemm = ::dlsym(RTLD_DEFAULT, "sgemm_"); gemm != nullptr && ::dladdr(gemm, &where) != 0 &&
                                                     where.dli_fname != nullptr) {
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

}  // namespace lockstep
