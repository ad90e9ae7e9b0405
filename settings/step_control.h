// What the Hugging Face Trainer does after an optimizer step: its DefaultFlowCallback's
// on_step_end and on_epoch_end, each followed by _maybe_log_save_evaluate (log, then
// evaluate, then save). No LibTorch here.
#pragma once

#include <cstdint>

#include "settings/trainer_state.h"
#include "settings/training_args.h"

namespace lockstep {

// The intervals as the TrainerState resolves them (ratios of max_steps made whole).
struct StepIntervals {
  int64_t logging = 500, eval = 500, save = 500;
};

// The moment just after optimizer step `step` (1-based).
struct StepMoment {
  int64_t step = 0;
  int64_t max_steps = 0;
  bool epoch_end = false;  // the step ends its epoch (or the run, which ends the epoch it is in)
  double epoch = 0;        // HF's fractional epoch after it
};

struct StepControl {
  bool log = false;       // when the step is also past the last logged one (the loop checks)
  bool evaluate = false;  // then, with save_strategy best, a new best saves
  bool save = false;
};

// The first round, on_step_end's. Logging: step 1 under logging_first_step, every `logging`
// steps (strategy steps). Evaluation (strategy steps): every `eval` steps from eval_delay on,
// and at the last step when it is not one of those. Saving (strategy steps): every `save`
// steps and at the last step.
StepControl ControlAfterStep(const TrainingArgs& args, const StepIntervals& intervals, const StepMoment& moment);

// The second round, on_epoch_end's, when the step ends its epoch (the last step ends the
// epoch it is in): logging, evaluation (once the epoch reaches eval_delay) and saving under
// their epoch strategies. The loop logs in either round only past the last step it logged.
StepControl ControlAfterEpoch(const TrainingArgs& args, const StepMoment& moment);

// The intervals the loop acts on for a run of `max_steps`: ratios of it made whole.
StepIntervals ResolveIntervals(const TrainingArgs& args, int64_t max_steps);

// The intervals trainer_state.json records (RecordedInterval), eval_steps as HF keeps it:
// its default 500 when TrainingArguments has none (eval_strategy no or epoch without eval_steps).
void RecordIntervals(const TrainingArgs& args, int64_t max_steps, TrainerState* state);

}  // namespace lockstep
