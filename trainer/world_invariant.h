// The gradient of a step in the world-size-invariant mode (--world_invariant): the same
// bits at every world size. Each unit of the step's global micro-batches (StepPlan::Units)
// is forwarded and backpropagated alone, its dropout drawn from a generator seeded by
// (seed, step, micro-batch, unit) rather than from a rank's stream; the ranks gather every
// unit's gradient and each adds them to the step's sum in global order (micro-batch, then
// unit), so neither the grouping into ranks nor the reduction order depends on the world
// size. The cost: one forward and backward per unit, and a gather of every unit's gradient
// instead of one all-reduce (bench/train_bench.cc, BM_WorldInvariant). Internal to trainer/.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "formats/status.h"
#include "settings/step_plan.h"

namespace lockstep {

class DataParallelJob;

class WorldInvariantStep {
 public:
  // `plan`, `job` and `params` must outlive this.
  WorldInvariantStep(const StepPlan& plan, DataParallelJob* job,
                     const std::vector<std::pair<std::string, at::Tensor>>* params, int64_t seed, c10::Device device)
      : plan_(plan), job_(job), params_(params), seed_(seed), device_(device) {
    for (const auto& named : *params_) {
      tensors_.push_back(named.second);
      numel_ += named.second.numel();
    }
  }

  // A window begins: its gradient sum starts at zero.
  void BeginWindow();
  // Global micro-batch `m` of step `step` (its sample ids `ids`, every rank's): this rank's
  // units, each through `unit_loss` (forward, the loss as the window scales it), then every
  // rank's unit gradients and losses added to the window's sums in global order.
  Status MicroBatch(int64_t step, int64_t m, const at::Tensor& ids,
                    const std::function<at::Tensor(const at::Tensor& unit_ids)>& unit_loss);
  // The window's gradient into the parameters' .grad; returns its loss (the sum of its units').
  at::Tensor FinishWindow();

 private:
  const StepPlan& plan_;
  DataParallelJob* job_;
  const std::vector<std::pair<std::string, at::Tensor>>* params_;
  int64_t seed_;
  c10::Device device_;
  std::vector<at::Tensor> tensors_;  // the parameters, as autograd::grad takes them
  int64_t numel_ = 0;                // their elements; a unit's row holds them and its loss
  at::Tensor sum_;                   // [numel_ + 1]
};

}  // namespace lockstep
