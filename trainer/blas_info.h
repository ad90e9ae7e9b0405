// Which BLAS library LibTorch is running on, with how many threads and (MKL) on which code
// branch: each changes the bits of a run (Debian's LibTorch uses whatever libblas.so.3 points
// to; the PyPI wheel links MKL), so the step log's header records them. No LibTorch here.
#pragma once

#include <nlohmann/json.hpp>

namespace lockstep {

// {"library": "/usr/lib/.../openblas-pthread/libblas.so.3", "config": "OpenBLAS 0.3.21 ...",
//  "threads": 2, "branch": null}; fields that cannot be found are null. "branch" is MKL's
// code branch (MKL_CBWR), null for any other BLAS.
nlohmann::json BlasInfo();

// The environment variable that fixes MKL's code branch (Conditional Numerical
// Reproducibility); MKL reads it before its first computation.
inline constexpr const char* kMklBranchVar = "MKL_CBWR";

// Pins MKL's code branch unless the environment already names one: AVX2 where the CPU has it,
// else COMPATIBLE. Without a pinned branch MKL on an AVX-512 CPU returns results that differ
// in the last bit from run to run (about 1 run in 10 of the reference trainer under load):
// a resumed run then looks diverged when it is not. Call before the first tensor operation.
// Does nothing (and returns false) when MKL is not the loaded BLAS.
bool PinBlasBranch();

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
