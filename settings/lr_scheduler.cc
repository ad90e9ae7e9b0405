#include "settings/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lockstep {

LrScheduler::PlateauState LrScheduler::Fresh(const LrLambda& schedule) {
  PlateauState state;
  state.lr = schedule.spec().base_lr;
  // torch's mode_worse: the best starts as bad as can be.
  const double inf = std::numeric_limits<double>::infinity();
  state.best = schedule.plateau().mode == "min" ? inf : -inf;
  return state;
}

bool LrScheduler::Improves(double metric) const {
  const PlateauOptions& o = schedule_.plateau();
  const double best = plateau_.best;
  if (o.mode == "min")
    return o.threshold_mode == "rel" ? metric < best * (1.0 - o.threshold) : metric < best - o.threshold;
  return o.threshold_mode == "rel" ? metric > best * (o.threshold + 1.0) : metric > best + o.threshold;
}

void LrScheduler::StepOnMetric(double metric) {
  if (!follows_metric()) return;
  const PlateauOptions& o = schedule_.plateau();
  PlateauState& p = plateau_;
  ++p.last_epoch;
  if (Improves(metric)) {
    p.best = metric;
    p.num_bad_epochs = 0;
  } else {
    ++p.num_bad_epochs;
  }
  if (p.cooldown_counter > 0) {  // bad evaluations in the cooldown are not counted
    --p.cooldown_counter;
    p.num_bad_epochs = 0;
  }
  if (p.num_bad_epochs > o.patience) {
    const double lowered = std::max(p.lr * o.factor, o.min_lr);
    if (p.lr - lowered > o.eps) p.lr = lowered;
    p.cooldown_counter = o.cooldown;
    p.num_bad_epochs = 0;
  }
}

nlohmann::json LrScheduler::ToJson() const {
  const LrLambdaSpec& spec = schedule_.spec();
  nlohmann::json j = {{"type", spec.type},
                      {"kwargs", spec.kwargs},
                      {"base_lr", spec.base_lr},
                      {"warmup_steps", spec.warmup_steps},
                      {"total_steps", spec.total_steps},
                      {"last_epoch", steps_},
                      {"last_lr", lr()}};
  if (follows_metric()) {
    j["plateau"] = {{"lr", plateau_.lr},
                    {"best", std::isfinite(plateau_.best) ? nlohmann::json(plateau_.best) : nlohmann::json()},
                    {"num_bad_epochs", plateau_.num_bad_epochs},
                    {"cooldown_counter", plateau_.cooldown_counter},
                    {"last_epoch", plateau_.last_epoch}};
  }
  return j;
}

Status LrScheduler::FromJson(const nlohmann::json& saved, const std::string& path) {
  const auto it = saved.is_object() ? saved.find("last_epoch") : saved.end();
  if (it == saved.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    return Status::Corruption(path + ": last_epoch (the scheduler's step count) is missing or not a count");
  }
  steps_ = it->get<int64_t>();
  if (!follows_metric()) return Status::Ok();
  const nlohmann::json p = saved.value("plateau", nlohmann::json());
  const auto count = [&](const char* key) {
    return p.is_object() && p.value(key, nlohmann::json()).is_number_integer();
  };
  if (!p.is_object() || !p.value("lr", nlohmann::json()).is_number() || !count("num_bad_epochs") ||
      !count("cooldown_counter") || !count("last_epoch")) {
    return Status::Corruption(path + ": plateau (reduce_lr_on_plateau's lr, best and counters) is missing or damaged");
  }
  plateau_ = Fresh(schedule_);
  plateau_.lr = p["lr"].get<double>();
  if (p.value("best", nlohmann::json()).is_number()) plateau_.best = p["best"].get<double>();
  plateau_.num_bad_epochs = p["num_bad_epochs"].get<int64_t>();
  plateau_.cooldown_counter = p["cooldown_counter"].get<int64_t>();
  plateau_.last_epoch = p["last_epoch"].get<int64_t>();
  return Status::Ok();
}

}  // namespace lockstep
