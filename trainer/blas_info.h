// Which BLAS library LibTorch is running on, and with how many threads: both change the
// bits of a run (Debian's LibTorch uses whatever libblas.so.3 points to), so the step
// log's header records them. No LibTorch here.
#pragma once

#include <nlohmann/json.hpp>

namespace lockstep {

// {"library": "/usr/lib/.../openblas-pthread/libblas.so.3", "config": "OpenBLAS 0.3.21 ...",
//  "threads": 2}; fields that cannot be found are null.
nlohmann::json BlasInfo();

}  // namespace lockstep
