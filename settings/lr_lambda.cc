#include "settings/lr_lambda.h"

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
      {"cosine_warmup_with_min_lr", {"num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate"}},
      {"warmup_stable_decay",
       {"num_decay_steps", "num_stable_steps", "warmup_type", "decay_type", "min_lr_ratio", "num_cycles"}},
      // torch.optim.lr_scheduler.ReduceLROnPlateau's options (LrScheduler follows them)
      {kReduceLrOnPlateau, {"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"}},
  };
  return kAllowed;
}
}  // namespace

Status LrLambda::Create(const LrLambdaSpec& spec, LrLambda* out) {
  if (kAllowedKwargs().count(spec.type) == 0) {
    return Status::InvalidArgument("unknown lr_scheduler_type '" + spec.type + "'");
  }
  LrLambdaSpec normalized = spec;
  if (normalized.kwargs.is_null()) normalized.kwargs = nlohmann::json::object();  // HF's None
  if (!normalized.kwargs.is_object()) return Status::InvalidArgument("lr_scheduler_kwargs must be a JSON object");
  return CreateNormalized(normalized, out);
}

Status LrLambda::CreateNormalized(const LrLambdaSpec& spec, LrLambda* out) {
  const auto allowed = kAllowedKwargs().find(spec.type);
  for (const auto& item : spec.kwargs.items()) {
    if (allowed->second.count(item.key()) == 0) {
      return Status::InvalidArgument("lr_scheduler_kwargs: '" + item.key() + "' is not an option of the " + spec.type +
                                     " scheduler");
    }
  }
  LrLambda s;
  s.spec_ = spec;
  s.num_cycles_ = spec.type == "cosine_with_restarts" ? 1.0 : 0.5;
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "num_cycles", &s.num_cycles_));
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "lr_end", &s.lr_end_));
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "power", &s.power_));
  // HF: timescale defaults to num_warmup_steps, or 10_000 when that is 0.
  s.timescale_ = spec.warmup_steps > 0 ? static_cast<double>(spec.warmup_steps) : 10000.0;
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "timescale", &s.timescale_));
  // transformers divides by the decay's length when the schedule reaches max_steps: with
  // warmup_steps == max_steps it is 0 (ZeroDivisionError at the last step).
  if (spec.type == "polynomial" && spec.total_steps > 0 && spec.warmup_steps == spec.total_steps) {
    return Status::InvalidArgument("polynomial scheduler: warmup_steps (" + std::to_string(spec.warmup_steps) +
                                   ") is every one of the " + std::to_string(spec.total_steps) +
                                   " updates, leaving no decay: transformers divides by zero at the last update");
  }
  if (spec.type == "polynomial" && !(spec.base_lr > s.lr_end_)) {
    return Status::InvalidArgument("polynomial scheduler: lr_end (" + std::to_string(s.lr_end_) +
                                   ") must be smaller than learning_rate (" + std::to_string(spec.base_lr) + ")");
  }
  if (spec.type == "inverse_sqrt" && !(s.timescale_ > 0)) {
    return Status::InvalidArgument("inverse_sqrt scheduler: timescale must be > 0");
  }
  if (spec.type == "cosine_with_min_lr" || spec.type == "cosine_warmup_with_min_lr") {
    const bool has_min_lr = spec.kwargs.contains("min_lr") && !spec.kwargs["min_lr"].is_null();
    const bool has_rate = spec.kwargs.contains("min_lr_rate") && !spec.kwargs["min_lr_rate"].is_null();
    if (has_min_lr == has_rate) {
      return Status::InvalidArgument(spec.type +
                                     " scheduler: set exactly one of min_lr and min_lr_rate in lr_scheduler_kwargs");
    }
    if (spec.kwargs.contains("warmup_lr_rate") && !spec.kwargs["warmup_lr_rate"].is_null()) {
      double rate = 0;
      LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "warmup_lr_rate", &rate));
      s.warmup_lr_rate_ = rate;
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
  if (spec.type == "warmup_stable_decay") LOCKSTEP_RETURN_IF_ERROR(s.ReadWsd(spec));
  if (spec.type == kReduceLrOnPlateau) LOCKSTEP_RETURN_IF_ERROR(s.ReadPlateau(spec));
  *out = s;
  return Status::Ok();
}

// transformers' get_wsd_schedule: num_decay_steps is required; the stable phase is what the
// total leaves unless num_stable_steps says.
Status LrLambda::ReadWsd(const LrLambdaSpec& spec) {
  const auto whole = [&](const char* key, int64_t* out) {
    double v = 0;
    LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, key, &v));
    if (v != std::floor(v))
      return Status::InvalidArgument(std::string("lr_scheduler_kwargs.") + key + " must be whole");
    *out = static_cast<int64_t>(v);
    return Status::Ok();
  };
  if (!spec.kwargs.contains("num_decay_steps") || spec.kwargs["num_decay_steps"].is_null()) {
    return Status::InvalidArgument("warmup_stable_decay scheduler: lr_scheduler_kwargs needs num_decay_steps");
  }
  LOCKSTEP_RETURN_IF_ERROR(whole("num_decay_steps", &num_decay_steps_));
  num_stable_steps_ = spec.total_steps - spec.warmup_steps - num_decay_steps_;
  if (spec.kwargs.contains("num_stable_steps") && !spec.kwargs["num_stable_steps"].is_null()) {
    LOCKSTEP_RETURN_IF_ERROR(whole("num_stable_steps", &num_stable_steps_));
  }
  for (const auto& [key, value] :
       {std::pair<const char*, std::string*>{"warmup_type", &warmup_type_}, {"decay_type", &decay_type_}}) {
    if (!spec.kwargs.contains(key) || spec.kwargs[key].is_null()) continue;
    if (!spec.kwargs[key].is_string())
      return Status::InvalidArgument(std::string("lr_scheduler_kwargs.") + key + " must be text");
    *value = spec.kwargs[key].get<std::string>();
    if (*value != "linear" && *value != "cosine" && *value != "1-sqrt") {
      return Status::InvalidArgument(std::string("warmup_stable_decay scheduler: unknown ") + key + ": " + *value +
                                     ", expected 'linear', 'cosine' or '1-sqrt'");
    }
  }
  return ReadNumber(spec.kwargs, "min_lr_ratio", &min_lr_ratio_);
}

// Each branch transcribes the matching _get_*_lr_lambda of transformers/optimization.py,
// keeping its order of floating-point operations so the lr bits agree.
double LrLambda::Factor(int64_t step) const {
  const std::string& type = spec_.type;
  const int64_t warmup = spec_.warmup_steps;
  const int64_t total = spec_.total_steps;
  if (type == "constant" || type == kReduceLrOnPlateau) return 1.0;  // the plateau's lr is LrScheduler's state
  if (type == "warmup_stable_decay") return WsdFactor(step);
  if (type == "cosine_warmup_with_min_lr") return CosineWarmupWithMinLrFactor(step);
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

// torch.optim.lr_scheduler.ReduceLROnPlateau's options and its checks.
Status LrLambda::ReadPlateau(const LrLambdaSpec& spec) {
  PlateauOptions& o = plateau_;
  const auto text = [&](const char* key, std::string* out) {
    if (!spec.kwargs.contains(key) || spec.kwargs[key].is_null()) return Status::Ok();
    if (!spec.kwargs[key].is_string()) {
      return Status::InvalidArgument(std::string("lr_scheduler_kwargs.") + key + " must be text");
    }
    *out = spec.kwargs[key].get<std::string>();
    return Status::Ok();
  };
  const auto whole = [&](const char* key, int64_t* out) {
    double v = static_cast<double>(*out);
    LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, key, &v));
    if (v != std::floor(v))
      return Status::InvalidArgument(std::string("lr_scheduler_kwargs.") + key + " must be whole");
    *out = static_cast<int64_t>(v);
    return Status::Ok();
  };
  LOCKSTEP_RETURN_IF_ERROR(text("mode", &o.mode));
  LOCKSTEP_RETURN_IF_ERROR(text("threshold_mode", &o.threshold_mode));
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "factor", &o.factor));
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "threshold", &o.threshold));
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "min_lr", &o.min_lr));
  LOCKSTEP_RETURN_IF_ERROR(ReadNumber(spec.kwargs, "eps", &o.eps));
  LOCKSTEP_RETURN_IF_ERROR(whole("patience", &o.patience));
  LOCKSTEP_RETURN_IF_ERROR(whole("cooldown", &o.cooldown));
  if (o.factor >= 1.0) return Status::InvalidArgument("reduce_lr_on_plateau scheduler: Factor should be < 1.0.");
  if (o.mode != "min" && o.mode != "max") {
    return Status::InvalidArgument("reduce_lr_on_plateau scheduler: mode " + o.mode + " is unknown!");
  }
  if (o.threshold_mode != "rel" && o.threshold_mode != "abs") {
    return Status::InvalidArgument("reduce_lr_on_plateau scheduler: threshold mode " + o.threshold_mode +
                                   " is unknown!");
  }
  return Status::Ok();
}

// _get_wsd_scheduler_lambda.
double LrLambda::WsdFactor(int64_t step) const {
  const int64_t warmup = spec_.warmup_steps;
  const auto shape = [](const std::string& type, double progress, bool rising, double num_cycles) {
    if (type == "linear") return rising ? progress : 1.0 - progress;
    if (type == "cosine") {
      return rising ? 0.5 * (1.0 - std::cos(kPi * progress))
                    : 0.5 * (1.0 + std::cos(kPi * num_cycles * 2.0 * progress));
    }
    return rising ? 1.0 - std::sqrt(1.0 - progress) : 1.0 - std::sqrt(progress);  // 1-sqrt
  };
  if (step < warmup) {
    const double progress = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
    const double factor = shape(warmup_type_, progress, true, num_cycles_) * (1.0 - min_lr_ratio_) + min_lr_ratio_;
    return std::max(0.0, factor);
  }
  if (step < warmup + num_stable_steps_) return 1.0;
  if (step < warmup + num_stable_steps_ + num_decay_steps_) {
    const double progress = static_cast<double>(step - warmup - num_stable_steps_) /
                            static_cast<double>(std::max<int64_t>(1, num_decay_steps_));
    const double factor = shape(decay_type_, progress, false, num_cycles_) * (1.0 - min_lr_ratio_) + min_lr_ratio_;
    return std::max(0.0, factor);
  }
  return min_lr_ratio_;
}

// _get_cosine_with_min_lr_schedule_with_warmup_lr_rate_lambda: every count as a float, the
// warmup from warmup_lr_rate (1 / warmup steps by default) and the decay a step ahead.
double LrLambda::CosineWarmupWithMinLrFactor(int64_t step) const {
  const double current = static_cast<double>(step), warmup = static_cast<double>(spec_.warmup_steps),
               total = static_cast<double>(spec_.total_steps);
  if (current < warmup) {
    if (!warmup_lr_rate_) return (current + 1.0) / std::max(1.0, warmup);
    return *warmup_lr_rate_ +
           (1.0 - *warmup_lr_rate_) * current / static_cast<double>(std::max<int64_t>(1, spec_.warmup_steps - 1));
  }
  const double progress = (current - warmup + 1.0) / std::max(1.0, total - warmup);
  double factor = 0.5 * (1.0 + std::cos(kPi * num_cycles_ * 2.0 * progress));
  factor = factor * (1 - min_lr_rate_) + min_lr_rate_;
  return std::max(0.0, factor);
}

}  // namespace lockstep
