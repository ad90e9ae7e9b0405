#include "cli/tolerance_flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "cli/arg_check.h"

namespace lockstep {
namespace {

Status ParseNonNegative(const std::string& flag, const std::string& text, double* out) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v < 0) {
    return Status::InvalidArgument(flag + " " + text + ": expected a non-negative number such as 1e-5");
  }
  *out = v;
  return Status::Ok();
}

}  // namespace

Status ParseToleranceFlags(const std::string& atol, const std::string& rtol, const std::string& ulp,
                           Tolerance* tolerance) {
  double v = 0;
  if (!atol.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(ParseNonNegative("--atol", atol, &v));
    tolerance->atol = v;
  }
  if (!rtol.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(ParseNonNegative("--rtol", rtol, &v));
    tolerance->rtol = v;
  }
  if (!ulp.empty()) {
    int64_t n = 0;
    LOCKSTEP_RETURN_IF_ERROR(ParseWholeNumber("--ulp", ulp, 0, &n));
    tolerance->ulp = static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

void AddToleranceFlags(CLI::App* cmd, std::string* atol, std::string* rtol, std::string* ulp,
                       const std::string& ulp_help) {
  cmd->add_option("--atol", *atol, "Accept |a-b| <= atol + rtol*|b| (NumPy's rule)")->type_name("X");
  cmd->add_option("--rtol", *rtol, "See --atol")->type_name("Y");
  cmd->add_option("--ulp", *ulp, ulp_help)->type_name("N");
}

}  // namespace lockstep
