#include "trainer/resume_check.h"

#include <set>

namespace lockstep {

bool IsSafeToChangeOnResume(const std::string& knob) {
  static const std::set<std::string> kSafe = {
      "output_dir",    "overwrite_output_dir", "logging_steps",          "eval_strategy",
      "eval_steps",    "save_strategy",        "save_steps",             "save_total_limit",
      "eval_samples",  "per_device_eval_batch_size", "load_best_model_at_end",
      "metric_for_best_model", "greater_is_better",
  };
  return kSafe.count(knob) == 1;
}

Status CheckResumeSettings(const nlohmann::json& saved, const std::string& origin, const TrainingArgs& now) {
  if (!saved.is_object()) return Status::Corruption(origin + ": training args are not a JSON object");
  const nlohmann::json current = TrainingArgsToJson(now);
  std::string diffs;
  for (const auto& [key, value] : current.items()) {
    if (IsSafeToChangeOnResume(key)) continue;
    const auto it = saved.find(key);
    const nlohmann::json before = it == saved.end() ? nlohmann::json("(absent)") : *it;
    if (before != value) diffs += "\n  - " + key + ": checkpoint " + before.dump() + ", now " + value.dump();
  }
  if (diffs.empty()) return Status::Ok();
  return Status::InvalidArgument("refusing to resume from " + origin +
                                 ": these settings change the run:" + diffs);
}

}  // namespace lockstep
