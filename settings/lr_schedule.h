// Learning-rate schedules with the exact semantics of transformers' get_scheduler: a
// LambdaLR whose lr after `s` scheduler steps is base_lr * lambda(s). The update at global
// step s (1-based) uses LrAt(s - 1), so with warmup the first update uses lr 0.
// No LibTorch here: the trainer sets the optimizer's lr from LrAt.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct LrScheduleSpec {
  std::string type = "linear";                       // HF's lr_scheduler_type
  nlohmann::json kwargs = nlohmann::json::object();  // HF's lr_scheduler_kwargs
  double base_lr = 5e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // max_steps
};

// HF: warmup_steps below 1 is a ratio of the total steps, rounded up.
int64_t ResolveWarmupSteps(double warmup_steps, int64_t total_steps);

class LrSchedule {
 public:
  // Validates the type and kwargs (unknown kwargs are refused) and builds the schedule.
  static Status Create(const LrScheduleSpec& spec, LrSchedule* out);

  // The multiplier lambda(step) of HF's LambdaLR.
  double Factor(int64_t step) const;

  // The lr after `step` scheduler steps: base_lr * Factor(step), as LambdaLR computes it.
  double LrAt(int64_t step) const { return spec_.base_lr * Factor(step); }

  const LrScheduleSpec& spec() const { return spec_; }

 private:
  static Status CreateNormalized(const LrScheduleSpec& spec, LrSchedule* out);

  LrScheduleSpec spec_;
  double num_cycles_ = 0.5;   // cosine: 0.5, cosine_with_restarts: 1
  double lr_end_ = 1e-7;      // polynomial
  double power_ = 1.0;        // polynomial
  double timescale_ = 0;      // inverse_sqrt
  double min_lr_rate_ = 0.0;  // cosine_with_min_lr
};

}  // namespace lockstep
