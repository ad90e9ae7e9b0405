// --atol X --rtol Y --ulp N, as `diff` and `replay` take them: parsed by Lockstep so every
// mistake names the flag and what it accepts.
#pragma once

#include <string>

#include "diff/tensor_compare.h"
#include "formats/status.h"

namespace lockstep {

// Empty text leaves that part unset. InvalidArgument naming the flag for a value that is
// not a non-negative number (--atol, --rtol) or whole number (--ulp).
Status ParseToleranceFlags(const std::string& atol, const std::string& rtol, const std::string& ulp,
                           Tolerance* tolerance);

}  // namespace lockstep
