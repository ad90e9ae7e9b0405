#include "settings/step_plan.h"

#include <algorithm>
#include <cmath>

#include "settings/batch_shard.h"

namespace lockstep {

int64_t StepPlan::WindowSize(int64_t u) const { return std::min(grad_accum, micro_batches_per_epoch - WindowStart(u)); }

int64_t StepPlan::MicroBatchSize(int64_t m) const {
  if (!shard.empty()) return static_cast<int64_t>(shard[static_cast<size_t>(m)].size());
  return std::min(batch_size, num_examples - m * batch_size);
}

std::pair<int64_t, int64_t> StepPlan::RankUnits(int64_t m) const {
  const int64_t units = Units(m), base = units / world_size, extra = units % world_size;
  const int64_t first = rank * base + std::min(rank, extra);
  return {first, first + base + (rank < extra ? 1 : 0)};
}

double StepPlan::EpochAfterUpdate(int64_t epoch, int64_t u) const {
  const int64_t consumed = WindowStart(u) + WindowSize(u);
  return static_cast<double>(epoch) + static_cast<double>(consumed) / static_cast<double>(micro_batches_per_epoch);
}

Status ComputeStepPlan(const TrainingArgs& args, int64_t num_examples, StepPlan* plan, int64_t rank) {
  StepPlan p;
  p.num_examples = num_examples;
  p.batch_size = args.per_device_train_batch_size;
  p.grad_accum = args.gradient_accumulation_steps;
  p.drop_last = args.dataloader_drop_last;
  if (p.batch_size < 1 || p.grad_accum < 1) {
    return Status::InvalidArgument("batch size and gradient_accumulation_steps must be >= 1");
  }
  p.world_size = args.world_size.value_or(1);
  p.rank = rank;
  p.world_invariant = args.world_invariant;
  p.unit = args.world_invariant_unit;
  if (p.world_invariant) {
    p.batch_size *= p.world_size;  // the global micro-batch
    if (p.unit < 1 || p.batch_size % p.unit != 0) {
      return Status::InvalidArgument(
          "world_invariant: the global micro-batch (per_device_train_batch_size x world_size = " +
          std::to_string(p.batch_size) + ") must be a multiple of world_invariant_unit (" + std::to_string(p.unit) +
          ")");
    }
  }
  if (p.world_size > 1 && !p.world_invariant) {
    p.shard = ShardEpoch(num_examples, p.batch_size, p.world_size, rank, p.drop_last);
    p.micro_batches_per_epoch = static_cast<int64_t>(p.shard.size());
  } else {
    p.micro_batches_per_epoch =
        p.drop_last ? num_examples / p.batch_size : (num_examples + p.batch_size - 1) / p.batch_size;
  }
  if (p.micro_batches_per_epoch == 0) {
    return Status::InvalidArgument(
        "the training set (" + std::to_string(num_examples) + " samples) yields no batch of " +
        std::to_string(p.batch_size) +
        (p.world_size > 1 && !p.world_invariant ? " per rank for " + std::to_string(p.world_size) + " ranks" : ""));
  }
  p.updates_per_epoch = (p.micro_batches_per_epoch + p.grad_accum - 1) / p.grad_accum;
  // Every count of the run (samples drawn, HF's float epoch, the speed metrics) must be exact:
  // at most 2^53 samples, which no real run approaches and no int64 product then overflows.
  const double samples_per_step = static_cast<double>(p.batch_size) * static_cast<double>(p.grad_accum) *
                                  static_cast<double>(p.world_invariant ? 1 : p.world_size);
  const double max_planned_steps = std::floor(kMaxPlannedSamples / samples_per_step);
  const double asked_steps = args.max_steps > 0
                                 ? static_cast<double>(args.max_steps)
                                 : std::ceil(args.num_train_epochs * static_cast<double>(p.updates_per_epoch));
  if (!(asked_steps <= max_planned_steps)) {
    return Status::InvalidArgument(
        (args.max_steps > 0 ? "max_steps " + std::to_string(args.max_steps)
                            : "num_train_epochs " + std::to_string(args.num_train_epochs)) +
        ": the run would draw more than 2^53 samples, past what its counters hold exactly (at most " +
        std::to_string(static_cast<int64_t>(max_planned_steps)) + " steps of " +
        std::to_string(static_cast<int64_t>(samples_per_step)) + " samples)");
  }
  if (args.max_steps > 0) {
    p.max_steps = args.max_steps;
    p.num_epochs = (p.max_steps - 1) / p.updates_per_epoch + 1;
  } else {
    p.max_steps = static_cast<int64_t>(asked_steps);
    p.num_epochs = static_cast<int64_t>(std::ceil(args.num_train_epochs));
  }
  if (p.max_steps < 1) return Status::InvalidArgument("the run has no optimizer step");
  *plan = p;
  return Status::Ok();
}

int64_t ResolveInterval(double steps, int64_t max_steps) {
  if (steps >= 1) return static_cast<int64_t>(steps);
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(static_cast<double>(max_steps) * steps)));
}

double RecordedInterval(double steps, int64_t max_steps) {
  return steps < 1 ? std::ceil(static_cast<double>(max_steps) * steps) : steps;
}

nlohmann::json SpeedMetrics(const TrainingArgs& args, const StepPlan& plan, int64_t train_samples, double runtime_s) {
  const auto round_to = [](double v, double scale) { return std::round(v * scale) / scale; };
  nlohmann::json m = {{"train_runtime", round_to(runtime_s, 1e4)}};
  if (runtime_s <= 0) return m;
  const double total_train_batch_size = static_cast<double>(args.per_device_train_batch_size) *
                                        static_cast<double>(args.gradient_accumulation_steps) *
                                        static_cast<double>(args.world_size.value_or(1));
  const double samples = args.max_steps > 0 ? static_cast<double>(args.max_steps) * total_train_batch_size
                                            : static_cast<double>(train_samples) * args.num_train_epochs;
  m["train_samples_per_second"] = round_to(samples / runtime_s, 1e3);
  m["train_steps_per_second"] = round_to(static_cast<double>(plan.max_steps) / runtime_s, 1e3);
  return m;
}

}  // namespace lockstep
