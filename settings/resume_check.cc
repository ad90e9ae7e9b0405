#include "settings/resume_check.h"

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

Status DiffResumeSettings(const nlohmann::json& saved, const std::string& origin, const TrainingArgs& now,
                          std::vector<SettingChange>* changes) {
  changes->clear();
  if (!saved.is_object()) return Status::Corruption(origin + ": training args are not a JSON object");
  const nlohmann::json current = TrainingArgsToJson(now);  // named: items() must not outlive it
  for (const auto& [knob, value] : current.items()) {
    const auto it = saved.find(knob);
    const nlohmann::json before = it == saved.end() ? nlohmann::json("(absent)") : *it;
    if (before != value) changes->push_back({knob, before, value, IsSafeToChangeOnResume(knob)});
  }
  return Status::Ok();
}

Status CheckResumeSettings(const std::vector<SettingChange>& changes, const std::string& origin, bool override_unsafe) {
  std::string diffs;
  for (const auto& c : changes) {
    if (!c.safe) diffs += "\n  - " + c.knob + ": checkpoint " + c.checkpoint.dump() + ", now " + c.now.dump();
  }
  if (diffs.empty() || override_unsafe) return Status::Ok();
  return Status::InvalidArgument("refusing to resume from " + origin + ": these settings change the run:" + diffs +
                                 "\n(--resume-override resumes anyway and marks every later step record)");
}

}  // namespace lockstep
