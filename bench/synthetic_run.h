// Runs written straight into a step log, no training: any length, any losses (NaN and
// infinities included), a few milliseconds per thousand steps. What the report bench
// measures at 10,000 and 1,000,000 steps, and what the report tests draw. No LibTorch here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "formats/status.h"

namespace lockstep {

struct SyntheticRun {
  int64_t steps = 100;
  int64_t dataset_size = 64;  // samples; 8 per step
  // The loss of step s (1-based); unset: SyntheticLoss, the same for every run.
  std::function<float(int64_t step)> loss;
  int64_t shuffled_step = 0;         // > 0: this step draws its samples in another order (a run that parts on its data)
  int64_t claimed_dataset_size = 0;  // > 0: the size the header claims (samples no epoch reaches)
  int64_t repeated_step = 0;         // > 0: this step draws the samples of the step before it again (a repeat)
  int64_t resume_after = 0;          // > 0: a resume event after this step
  std::string grad_norm_measured;    // non-empty: the header says what grad_norm is ("after clipping")
};

// A deterministic, positive, noisy decay: the default loss of step s.
float SyntheticLoss(int64_t step);

// Writes `run` as `dir`/steps.jsonl.zst, creating `dir`.
Status WriteSyntheticRun(const std::string& dir, const SyntheticRun& run);

}  // namespace lockstep
