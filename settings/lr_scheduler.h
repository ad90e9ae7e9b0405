// LrScheduler: a schedule and how far it has stepped (LambdaLR's last_epoch), the piece
// of training state a checkpoint's scheduler.json holds. The step count is restored
// rather than derived from global_step, as HF restores scheduler.pt.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "settings/lr_lambda.h"

namespace lockstep {

class LrScheduler {
 public:
  LrScheduler() = default;
  explicit LrScheduler(LrLambda schedule) : schedule_(std::move(schedule)) {}

  // The lr the next optimizer step uses: the update at global step s uses the lr after
  // s-1 scheduler steps; under reduce_lr_on_plateau, the lr the evaluations so far left.
  double lr() const { return schedule_.follows_metric() ? plateau_.lr : schedule_.LrAt(steps_); }
  // HF: lr_scheduler.step() right after optimizer.step() (counted under
  // reduce_lr_on_plateau too, which the Trainer steps after an evaluation instead).
  void Step() { ++steps_; }
  int64_t steps() const { return steps_; }
  // Whether the lr follows an eval metric (reduce_lr_on_plateau): StepOnMetric after each
  // evaluation of the training loop, as the Trainer's _evaluate steps ReduceLROnPlateau.
  bool follows_metric() const { return schedule_.follows_metric(); }
  // torch's ReduceLROnPlateau.step(metric): a new best resets the count of bad
  // evaluations; more of them than `patience` multiplies the lr by `factor` (not below
  // min_lr, and only when it moves by more than eps), then waits `cooldown` evaluations.
  void StepOnMetric(double metric);

  // scheduler.json: the schedule's spec, its step count and the lr it gives now.
  nlohmann::json ToJson() const;
  // Restores the step count from what ToJson saved; a missing or negative count is
  // Corruption naming `path`.
  Status FromJson(const nlohmann::json& saved, const std::string& path);
  // Starts the schedule over (a testing-only fault: the scheduler not restored).
  void Restart() { steps_ = 0, plateau_ = Fresh(schedule_); }

 private:
  // ReduceLROnPlateau's state: the lr it set, the best metric, its counters.
  struct PlateauState {
    double lr = 0, best = 0;
    int64_t num_bad_epochs = 0, cooldown_counter = 0, last_epoch = 0;
  };
  bool Improves(double metric) const;

  LrLambda schedule_;
  int64_t steps_ = 0;
  PlateauState plateau_ = Fresh(schedule_);
  static PlateauState Fresh(const LrLambda& schedule);
};

}  // namespace lockstep
