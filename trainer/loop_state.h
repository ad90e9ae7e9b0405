// The training loop's own state between steps, as a checkpoint's loop_state.json holds it:
// HF's loss bookkeeping (LossTotals), the dataset's digest, and where the checkpoint's
// step ends in the step log (a resume proves the log up to there before continuing it).
// No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/step_log.h"

namespace lockstep {

// HF's loss bookkeeping: tr_loss is a float32 accumulator reset at each log; total_loss is
// the float64 sum of the logged chunks; train_loss = total_loss / global_step.
class LossTotals {
 public:
  // Adds one optimizer step's loss to the accumulator.
  void Add(float step_loss) { tr_loss_ += step_loss; }
  // The mean loss since the last log, as HF logs it at `step`; the accumulator moves into
  // the total and starts over.
  double TakeLogged(int64_t step);
  // The run's train_loss after `global_step` steps: the unlogged remainder is added first.
  double TrainLoss(int64_t global_step);
  // Starts over as if the last log had been at `step` (a testing-only fault: the loss sums
  // not restored).
  void Restart(int64_t step) {
    *this = LossTotals();
    last_logged_step_ = step;
  }

  float tr_loss() const { return tr_loss_; }
  double total_loss() const { return total_loss_; }
  int64_t last_logged_step() const { return last_logged_step_; }
  // Restores the three values from a checkpoint (tr_loss from its bits: bit-exact).
  void Restore(float tr_loss, double total_loss, int64_t last_logged_step) {
    tr_loss_ = tr_loss, total_loss_ = total_loss, last_logged_step_ = last_logged_step;
  }

 private:
  float tr_loss_ = 0.0f;
  double total_loss_ = 0.0;
  int64_t last_logged_step_ = 0;  // HF's globalstep_last_logged
};

struct LoopState {
  LossTotals losses;
  std::string dataset_xxh3_128;
  std::optional<StepLogPosition> step_log;  // absent in checkpoints written before it was recorded

  nlohmann::json ToJson() const;
  // Reads loop_state.json; a malformed field is Corruption naming `path`.
  static Status FromJson(const nlohmann::json& saved, const std::string& path, LoopState* out);
};

}  // namespace lockstep
