#include "settings/lr_scheduler.h"

namespace lockstep {

nlohmann::json LrScheduler::ToJson() const {
  const LrScheduleSpec& spec = schedule_.spec();
  return {{"type", spec.type},
          {"kwargs", spec.kwargs},
          {"base_lr", spec.base_lr},
          {"warmup_steps", spec.warmup_steps},
          {"total_steps", spec.total_steps},
          {"last_epoch", steps_},
          {"last_lr", lr()}};
}

Status LrScheduler::FromJson(const nlohmann::json& saved, const std::string& path) {
  const auto it = saved.is_object() ? saved.find("last_epoch") : saved.end();
  if (it == saved.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    return Status::Corruption(path + ": last_epoch (the scheduler's step count) is missing or not a count");
  }
  steps_ = it->get<int64_t>();
  return Status::Ok();
}

}  // namespace lockstep
