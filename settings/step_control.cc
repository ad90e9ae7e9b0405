#include "settings/step_control.h"

#include "settings/step_plan.h"

namespace lockstep {

StepControl ControlAfterStep(const TrainingArgs& args, const StepIntervals& iv, const StepMoment& m) {
  StepControl c;
  const auto every = [&](int64_t interval) { return interval > 0 && m.step % interval == 0; };
  const bool last = m.step >= m.max_steps;
  c.log = (m.step == 1 && args.logging_first_step) || (args.logging_strategy == "steps" && every(iv.logging));
  if (args.eval_strategy == "steps" && args.eval_delay <= static_cast<double>(m.step)) {
    c.evaluate = every(iv.eval) || last;  // HF evaluates at the end when the last step is not on the interval
  }
  c.save = args.save_strategy == "steps" && (every(iv.save) || last);
  return c;
}

StepControl ControlAfterEpoch(const TrainingArgs& args, const StepMoment& m) {
  StepControl c;
  if (!m.epoch_end) return c;
  c.log = args.logging_strategy == "epoch";
  c.evaluate = args.eval_strategy == "epoch" && args.eval_delay <= m.epoch;
  c.save = args.save_strategy == "epoch";
  return c;
}

StepIntervals ResolveIntervals(const TrainingArgs& args, int64_t max_steps) {
  StepIntervals iv;
  iv.logging = ResolveInterval(args.logging_steps, max_steps);
  iv.save = ResolveInterval(args.save_steps, max_steps);
  if (const auto eval = ResolvedEvalSteps(args)) iv.eval = ResolveInterval(*eval, max_steps);
  return iv;
}

void RecordIntervals(const TrainingArgs& args, int64_t max_steps, TrainerState* state) {
  state->logging_steps = RecordedInterval(args.logging_steps, max_steps);
  state->save_steps = RecordedInterval(args.save_steps, max_steps);
  if (const auto eval = ResolvedEvalSteps(args)) state->eval_steps = RecordedInterval(*eval, max_steps);
}

}  // namespace lockstep
