#include "formats/file_names.h"

namespace lockstep {
namespace {

constexpr char kRngStatePrefix[] = "rng_state";

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// `name` is prefix + digits + suffix: the digits' value (at most 9 of them).
bool ParseNumbered(const std::string& name, const std::string& prefix, const std::string& suffix, int64_t* n) {
  if (name.rfind(prefix, 0) != 0 || !EndsWith(name, suffix) || name.size() <= prefix.size() + suffix.size()) {
    return false;
  }
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  *n = std::stoll(digits);
  return true;
}

}  // namespace

std::string RngStateFileName(int64_t rank, int64_t world, const std::string& ext) {
  return world <= 1 ? kRngStatePrefix + ext : std::string(kRngStatePrefix) + "_" + std::to_string(rank) + ext;
}

bool IsRngStateFile(const std::string& name, const std::string& ext) {
  int64_t rank;
  return name == kRngStatePrefix + ext || ParseNumbered(name, std::string(kRngStatePrefix) + "_", ext, &rank);
}

bool ParseRankedRngFile(const std::string& name, int64_t* rank) {
  return ParseNumbered(name, std::string(kRngStatePrefix) + "_", hf::kRngStateExt, rank) ||
         ParseNumbered(name, std::string(kRngStatePrefix) + "_", kRngStateJsonExt, rank) ||
         ParseNumbered(name, accelerate::kRandomStatesPrefix, accelerate::kPickleExt, rank);
}

namespace deepspeed {
std::string OptimStatesFile(int64_t rank, bool bf16) {
  return std::string(bf16 ? "bf16_" : "") + "zero_pp_rank_" + std::to_string(rank) + "_mp_rank_00_optim_states.pt";
}
std::string RankModelStatesFile(int64_t rank) {
  return "zero_pp_rank_" + std::to_string(rank) + "_mp_rank_00_model_states.pt";
}
}  // namespace deepspeed

namespace dcp {
bool ParseDataFile(const std::string& name, int64_t* rank) {
  const size_t second = name.find('_', 2);
  if (name.rfind("__", 0) != 0 || !EndsWith(name, kDataExt) || second == std::string::npos || second == 2) {
    return false;
  }
  const std::string digits = name.substr(2, second - 2);
  if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  *rank = std::stoll(digits);
  return true;
}
}  // namespace dcp

namespace accelerate {
std::string RandomStatesFile(int64_t process) { return kRandomStatesPrefix + std::to_string(process) + kPickleExt; }
}  // namespace accelerate

}  // namespace lockstep
