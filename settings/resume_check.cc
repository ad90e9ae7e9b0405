#include "settings/resume_check.h"

#include <algorithm>
#include <set>

#include "settings/location_settings.h"

namespace lockstep {

bool IsSafeToChangeOnResume(const std::string& knob) {
  static const std::set<std::string> kSafe = {
      "logging_strategy",
      "logging_steps",
      "logging_first_step",
      "eval_strategy",
      "eval_delay",
      "eval_on_start",
      "save_only_model",
      "eval_steps",
      "save_strategy",
      "save_steps",
      "save_total_limit",
      "save_async",
      "ddp_timeout",
      "eval_samples",
      "per_device_eval_batch_size",
      "load_best_model_at_end",
      "metric_for_best_model",
      "greater_is_better",
  };
  return kSafe.count(knob) == 1 || IsOutputLocationSetting(knob);
}

namespace {

using nlohmann::json;

int64_t Int(const json& v, int64_t fallback) { return v.is_number_integer() ? v.get<int64_t>() : fallback; }

// The global micro-batch a training_args.json decides (per_device_train_batch_size x world_size).
int64_t GlobalMicroBatch(const json& args) {
  return Int(args.value("per_device_train_batch_size", json()), 0) * Int(args.value("world_size", json()), 1);
}

// Why a change of world size cannot be resumed exactly, or "" when it can.
std::string WorldChangeRefusal(const json& saved, const TrainingArgs& now) {
  if (saved.value("world_invariant", false) != true || !now.world_invariant) {
    return "an ordinary data-parallel run's bits depend on its world size (the all-reduce's summation order, each "
           "rank's dropout stream, the sharding of the data): only a run trained with --world_invariant resumes at "
           "another world size";
  }
  const int64_t global = GlobalMicroBatch(saved), world = now.world_size.value_or(1);
  if (global == now.per_device_train_batch_size * world) return "";
  return "a --world_invariant run resumes at another world size only with its global micro-batch, "
         "per_device_train_batch_size x world_size = " +
         std::to_string(global) +
         (global % world == 0 ? ": at " + std::to_string(world) + (world == 1 ? " rank" : " ranks") +
                                    " pass --per_device_train_batch_size " + std::to_string(global / world)
                              : ", which " + std::to_string(world) + " ranks do not divide");
}

}  // namespace

Status DiffResumeSettings(const nlohmann::json& saved, const std::string& origin, const TrainingArgs& now,
                          std::vector<SettingChange>* changes) {
  changes->clear();
  if (!saved.is_object()) return Status::Corruption(origin + ": training args are not a JSON object");
  const nlohmann::json current = TrainingArgsToJson(now);  // named: items() must not outlive it
  const nlohmann::json defaults = TrainingArgsToJson(TrainingArgs());
  for (const auto& [knob, value] : current.items()) {
    const auto it = saved.find(knob);
    if (it == saved.end() && defaults.value(knob, json()) == value) continue;  // older than the knob, at its default
    const nlohmann::json before = it == saved.end() ? nlohmann::json("(absent)") : *it;
    if (before != value) changes->push_back({knob, before, value, IsSafeToChangeOnResume(knob), ""});
  }
  if (std::any_of(changes->begin(), changes->end(), [](const SettingChange& c) { return c.knob == "world_size"; })) {
    const std::string refusal = WorldChangeRefusal(saved, now);
    for (auto& c : *changes) {
      if (c.knob == "world_size") c.why = refusal;
      if (refusal.empty()) c.safe |= c.knob == "world_size" || c.knob == "per_device_train_batch_size";
    }
  }
  return Status::Ok();
}
Status CheckResumeSettings(const std::vector<SettingChange>& changes, const std::string& origin, bool override_unsafe) {
  std::string diffs;
  for (const auto& c : changes) {
    if (c.safe) continue;
    diffs += "\n  - " + c.knob + ": checkpoint " + c.checkpoint.dump() + ", now " + c.now.dump();
    if (!c.why.empty()) diffs += ": " + c.why;
  }
  if (diffs.empty() || override_unsafe) return Status::Ok();
  return Status::InvalidArgument("refusing to resume from " + origin + ": these settings change the run:" + diffs +
                                 "\n(--resume-override resumes anyway and marks every later step record)");
}

}  // namespace lockstep
