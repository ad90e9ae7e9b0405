// Which BLAS library LibTorch is running on, and with how many threads: both change the
// bits of a run (Debian's LibTorch uses whatever libblas.so.3 points to), so the step
// log's header records them. No LibTorch here.
#pragma once

#include <nlohmann/json.hpp>

namespace lockstep {

// {"library": "/usr/lib/.../openblas-pthread/libblas.so.3", "config": "OpenBLAS 0.3.21 ...",
//  "threads": 2}; fields that cannot be found are null.
nlohmann::json BlasInfo();

// Sets the BLAS library's thread count (OpenBLAS or MKL, found at run time), so that the
// environment (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS) cannot change a run's bits: OpenBLAS
// splits a GEMM's sums by thread. False when no known BLAS is loaded: BlasInfo() then says
// what runs, and a resume compares it.
bool SetBlasThreads(int threads);

// The BLAS facts of `before` (a step log header's "blas") that differ from `now`, as
// {"setting": "blas.threads", "checkpoint": 1, "now": 2} rows; empty when they agree or
// `before` recorded nothing.
nlohmann::json BlasChanges(const nlohmann::json& before, const nlohmann::json& now);

}  // namespace lockstep
