// Learning-rate schedules with the exact semantics of transformers' get_scheduler: a
// LambdaLR whose lr after `s` scheduler steps is base_lr * lambda(s). The update at global
// step s (1-based) uses LrAt(s - 1), so with warmup the first update uses lr 0.
// The step-indexed lambda alone: LrScheduler (lr_scheduler.h) steps it and saves its state.
// No LibTorch here: the trainer sets the optimizer's lr from LrAt.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

// The scheduler that follows an eval metric instead of the step (torch's
// ReduceLROnPlateau, which the Trainer steps after each evaluation): LrScheduler keeps its state.
constexpr char kReduceLrOnPlateau[] = "reduce_lr_on_plateau";

// torch's ReduceLROnPlateau options, as lr_scheduler_kwargs gives them.
struct PlateauOptions {
  std::string mode = "min";  // min | max
  double factor = 0.1;       // the lr is multiplied by it on a plateau (< 1)
  int64_t patience = 10;     // evaluations without improvement tolerated
  double threshold = 1e-4;
  std::string threshold_mode = "rel";  // rel | abs
  int64_t cooldown = 0;
  double min_lr = 0, eps = 1e-8;
};

struct LrLambdaSpec {
  std::string type = "linear";                       // HF's lr_scheduler_type
  nlohmann::json kwargs = nlohmann::json::object();  // HF's lr_scheduler_kwargs
  double base_lr = 5e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // max_steps
};

// HF: warmup_steps below 1 is a ratio of the total steps, rounded up.
int64_t ResolveWarmupSteps(double warmup_steps, int64_t total_steps);

class LrLambda {
 public:
  // Validates the type and kwargs (unknown kwargs are refused) and builds the schedule.
  static Status Create(const LrLambdaSpec& spec, LrLambda* out);

  // The multiplier lambda(step) of HF's LambdaLR.
  double Factor(int64_t step) const;

  // The lr after `step` scheduler steps: base_lr * Factor(step), as LambdaLR computes it.
  double LrAt(int64_t step) const { return spec_.base_lr * Factor(step); }

  const LrLambdaSpec& spec() const { return spec_; }
  bool follows_metric() const { return spec_.type == kReduceLrOnPlateau; }
  const PlateauOptions& plateau() const { return plateau_; }

 private:
  static Status CreateNormalized(const LrLambdaSpec& spec, LrLambda* out);
  Status ReadWsd(const LrLambdaSpec& spec);
  Status ReadPlateau(const LrLambdaSpec& spec);
  double WsdFactor(int64_t step) const;
  double CosineWarmupWithMinLrFactor(int64_t step) const;

  LrLambdaSpec spec_;
  double num_cycles_ = 0.5;               // cosine: 0.5, cosine_with_restarts: 1
  double lr_end_ = 1e-7;                  // polynomial
  double power_ = 1.0;                    // polynomial
  double timescale_ = 0;                  // inverse_sqrt
  double min_lr_rate_ = 0.0;              // cosine_with_min_lr, cosine_warmup_with_min_lr
  std::optional<double> warmup_lr_rate_;  // cosine_warmup_with_min_lr
  // warmup_stable_decay
  int64_t num_stable_steps_ = 0, num_decay_steps_ = 0;
  std::string warmup_type_ = "linear", decay_type_ = "cosine";
  double min_lr_ratio_ = 0.0;
  PlateauOptions plateau_;  // reduce_lr_on_plateau
};

}  // namespace lockstep
