// --atol X --rtol Y --ulp N, as `diff` and `replay` take them: parsed by Lockstep so every
// mistake names the flag and what it accepts.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "diff/tensor_compare.h"
#include "formats/status.h"

namespace lockstep {

// Defines --atol, --rtol and --ulp on `cmd`, read as text into the three strings (parsed
// below); `ulp_help` says what the ULP is counted in for this command.
void AddToleranceFlags(CLI::App* cmd, std::string* atol, std::string* rtol, std::string* ulp,
                       const std::string& ulp_help);

// Empty text leaves that part unset. InvalidArgument naming the flag for a value that is
// not a non-negative number (--atol, --rtol) or whole number (--ulp).
Status ParseToleranceFlags(const std::string& atol, const std::string& rtol, const std::string& ulp,
                           Tolerance* tolerance);

}  // namespace lockstep
