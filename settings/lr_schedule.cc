#include "settings/lr_schedule.h"

#include <cmath>
#include <map>
#include <set>

namespace lockstep {
namespace {

constexpr double kPi = 3.141592653589793;  // Python's math.pi

double WarmupFactor(int64_t step, int64_t warmup) {
  return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
}

Status ReadNumber(const nlohmann::json& kwargs, const char* key, double* out) {
  if (!kwargs.contains(key) || kwargs[key].is_null()) return Status::Ok();
  if (!kwargs[key].is_number()) {
    return Status::InvalidArgument(std::string("lr_scheduler_kwargs.") + key + " must be a number");
  }
  *out = kwargs[key].get<double>();
  return Status::Ok();
}

}  // namespace

int64_t ResolveWarmupSteps(double warmup_steps, int64_t total_steps) {
  if (warmup_steps >= 1) return static_cast<int64_t>(warmup_steps);
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * warmup_steps));
}

namespace {
const std::map<std::string, std::set<std::string>>& kAllowedKwargs() {
  static const std::map<std::string, std::set<std::string>> kAllowed = {
      {"linear", {}},
      {"cosine", {"num_cycles"}},
      {"cosine_with_restarts", {"num_cycles"}},
      {"polynomial", {"lr_end", "power"}},
      {"constant", {}},
      {"constant_with_warmup", {}},
      {"inverse_sqrt", {"timescale"}},
      {"cosine_with_min_lr", {"num_cycles", "min_lr", "min_lr_rate"}},
  };
  return kAllowed;
}
}  // namespace

Status LrSchedule::Create(const LrScheduleSpec& spec, LrSchedule* out) {
  if (kAllowedKwargs().count(spec.type) == 0) {
    return Status::InvalidArgument("unknown lr_scheduler_type '" + spec.type + "'");
  }
  LrScheduleSpec normalized = spec;
  if (normalized.kwargs.is_null()) normalized.kwargs = nlohmann::json::object();  // HF's None
  if (!normalized.kwargs.is_object()) return Status::InvalidArgument("lr_scheduler_kwargs must be a JSON object");
  return CreateNormalized(normalized, out);
}

Status LrSchedule::CreateNormalized(const LrScheduleSpec& spec, LrSchedule* out) {
  const auto allowed = kAllowedKwargs().find(spec.type);
  for (const auto& item : spec.kwargs.items()) {
    if (allowed->second.count(item.key()) == 0) {
      return Status::InvalidArgument("lr_scheduler_kwargs: '" + item.key() + "' is not an option of the " + spec.type +
                                     " scheduler");
    }
  }
  LrSchedule s;
  s.spec_ = spec;
  s.num_cycles_ = spec.type == "cosine_with_restarts" ? 1.0 : 0.5;
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "num_cycles", &s.num_cycles_));
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "lr_end", &s.lr_end_));
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "power", &s.power_));
  // HF: timescale defaults to num_warmup_steps, or 10_000 when that is 0.
  s.timescale_ = spec.warmup_steps > 0 ? static_cast<double>(spec.warmup_steps) : 10000.0;
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "timescale", &s.timescale_));
  if (spec.type == "polynomial" && !(spec.base_lr > s.lr_end_)) {
    return Status::InvalidArgument("polynomial scheduler: lr_end (" + std::to_string(s.lr_end_) +
                                   ") must be smaller than learning_rate (" + std::to_string(spec.base_lr) + ")");
  }
  if (spec.type == "inverse_sqrt" && !(s.timescale_ > 0)) {
    return Status::InvalidArgument("inverse_sqrt scheduler: timescale must be > 0");
  }
  if (spec.type == "cosine_with_min_lr") {
    const bool has_min_lr = spec.kwargs.contains("min_lr") && !spec.kwargs["min_lr"].is_null();
    const bool has_rate = spec.kwargs.contains("min_lr_rate") && !spec.kwargs["min_lr_rate"].is_null();
    if (has_min_lr == has_rate) {
      return Status::InvalidArgument(
          "cosine_with_min_lr scheduler: set exactly one of min_lr and min_lr_rate in lr_scheduler_kwargs");
    }
    if (has_min_lr) {
      double min_lr = 0;
      LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "min_lr", &min_lr));
      if (spec.base_lr <= 0) return Status::InvalidArgument("cosine_with_min_lr: learning_rate must be > 0");
      s.min_lr_rate_ = min_lr / spec.base_lr;  // HF: min_lr / optimizer.defaults["lr"]
    } else {
      LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "min_lr_rate", &s.min_lr_rate_));
    }
  }
  *out = s;
  return Status::Ok();
}

// Each branch transcribes the matching _get_*_lr_lambda of transformers/optimization.py,
// keeping its order of floating-point operations so the lr bits agree.
double LrSchedule::Factor(int64_t step) const {
  const std::string& type = spec_.type;
  const int64_t warmup = spec_.warmup_steps;
  const int64_t total = spec_.total_steps;
  if (type == "constant") return 1.0;
  if (step < warmup) return WarmupFactor(step, warmup);  // every other schedule warms up linearly
  if (type == "constant_with_warmup") return 1.0;

  const double progress =
      static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  if (type == "linear") {
    return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
  }
  if (type == "cosine" || type == "cosine_with_min_lr") {
    double factor = 0.5 * (1.0 + std::cos(kPi * num_cycles_ * 2.0 * progress));
    factor = factor * (1 - min_lr_rate_) + min_lr_rate_;
    return std::max(0.0, factor);
  }
  if (type == "cosine_with_restarts") {
    if (progress >= 1.0) return 0.0;
    return std::max(0.0, 0.5 * (1.0 + std::cos(kPi * std::fmod(num_cycles_ * progress, 1.0))));
  }
  if (type == "polynomial") {
    const double lr_init = spec_.base_lr;
    if (step > total) return lr_end_ / lr_init;
    const double lr_range = lr_init - lr_end_;
    const double decay_steps = static_cast<double>(total - warmup);
    const double pct_remaining = 1 - static_cast<double>(step - warmup) / decay_steps;
    const double decay = lr_range * std::pow(pct_remaining, power_) + lr_end_;
    return decay / lr_init;
  }
  if (type == "inverse_sqrt") {
    const double shift = timescale_ - static_cast<double>(warmup);
    return 1.0 / std::sqrt((static_cast<double>(step) + shift) / timescale_);
  }
  return 1.0;
}

}  // namespace lockstep
