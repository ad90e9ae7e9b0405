// LrScheduler: a schedule and how far it has stepped (LambdaLR's last_epoch), the piece
// of training state a checkpoint's scheduler.json holds. The step count is restored
// rather than derived from global_step, as HF restores scheduler.pt.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "settings/lr_schedule.h"

namespace lockstep {

class LrScheduler {
 public:
  LrScheduler() = default;
  explicit LrScheduler(LrSchedule schedule) : schedule_(std::move(schedule)) {}

  // The lr the next optimizer step uses: the update at global step s uses the lr after
  // s-1 scheduler steps.
  double lr() const { return schedule_.LrAt(steps_); }
  // HF: lr_scheduler.step() right after optimizer.step().
  void Step() { ++steps_; }
  int64_t steps() const { return steps_; }

  // scheduler.json: the schedule's spec, its step count and the lr it gives now.
  nlohmann::json ToJson() const;
  // Restores the step count from what ToJson saved; a missing or negative count is
  // Corruption naming `path`.
  Status FromJson(const nlohmann::json& saved, const std::string& path);
  // Starts the schedule over (a testing-only fault: the scheduler not restored).
  void Restart() { steps_ = 0; }

 private:
  LrSchedule schedule_;
  int64_t steps_ = 0;
};

}  // namespace lockstep
