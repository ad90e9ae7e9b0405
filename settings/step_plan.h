// StepPlan: how many micro-batches, optimizer updates and epochs a run has, by the Hugging
// Face Trainer's rules. No LibTorch here.
//
//   micro-batches per epoch = ceil(N / batch)   (floor with dataloader_drop_last); in a
//                             data-parallel job, this rank's share (settings/batch_shard.h)
//   updates per epoch       = ceil(micro-batches / gradient_accumulation_steps)
//   max_steps               = max_steps if > 0, else ceil(num_train_epochs * updates per epoch)
//
// The last accumulation window of an epoch may be shorter; it still makes an update.
//
// world_invariant: the micro-batches are the job's global ones (per_device_train_batch_size
// x world_size samples, contiguous in the epoch's permutation, every rank drawing all of
// them), so the plan is the same at every world size; each is cut into units of
// world_invariant_unit samples and rank r computes the units RankUnits gives it.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "settings/training_args.h"

namespace lockstep {

// The most samples a run may draw (2^53): its counts stay exact in a double (HF's epoch, the
// speed metrics) and its int64 products cannot overflow.
constexpr double kMaxPlannedSamples = 9007199254740992.0;

struct StepPlan {
  int64_t num_examples = 0;
  int64_t batch_size = 0;
  int64_t grad_accum = 1;
  bool drop_last = false;
  int64_t world_size = 1;
  int64_t rank = 0;
  // With world_size > 1: this rank's micro-batches of every epoch, as positions in the
  // epoch's permutation (ShardEpoch). Empty for one process: micro-batch m is the
  // contiguous positions [m * batch_size, ...).
  std::vector<std::vector<int64_t>> shard;
  bool world_invariant = false;
  int64_t unit = 1;  // world_invariant: samples per unit
  int64_t micro_batches_per_epoch = 0;
  int64_t updates_per_epoch = 0;
  int64_t max_steps = 0;   // total optimizer updates of the run
  int64_t num_epochs = 0;  // epochs the loop enters (the last may stop early)

  // Micro-batches in the accumulation window of update `u` (0-based within its epoch).
  int64_t WindowSize(int64_t u) const;
  // Index (within the epoch) of the first micro-batch of update `u`.
  int64_t WindowStart(int64_t u) const { return u * grad_accum; }
  // Samples in micro-batch `m` of an epoch (the last may be short unless drop_last).
  int64_t MicroBatchSize(int64_t m) const;
  // world_invariant: the units of micro-batch `m` (unit i is its samples [i * unit, ...)),
  // and the first and one-past-last of them this rank computes: a contiguous share, the
  // first ranks taking one more where they do not divide evenly.
  int64_t Units(int64_t m) const { return (MicroBatchSize(m) + unit - 1) / unit; }
  std::pair<int64_t, int64_t> RankUnits(int64_t m) const;
  // HF's fractional epoch after update `u` of epoch `epoch`:
  // epoch + (micro-batches consumed) / micro_batches_per_epoch.
  double EpochAfterUpdate(int64_t epoch, int64_t u) const;
};

// Derives the plan of `rank` for `num_examples` training samples, in a job of
// args.world_size processes (unset: 1); fails when no batch fits.
Status ComputeStepPlan(const TrainingArgs& args, int64_t num_examples, StepPlan* plan, int64_t rank = 0);

// HF's logging/eval/save interval: values below 1 are a ratio of max_steps (rounded up).
int64_t ResolveInterval(double steps, int64_t max_steps);

// The interval as TrainerState.compute_steps records it: a ratio below 1 made
// ceil(max_steps * ratio), anything else as given (2.5 stays 2.5 under a strategy that
// never uses it).
double RecordedInterval(double steps, int64_t max_steps);

// HF's speed_metrics("train", ...) for a run of `runtime_s` seconds: train_runtime
// (rounded to 4 places) and, for a non-zero runtime, train_samples_per_second and
// train_steps_per_second (3 places). Samples are max_steps x per_device_train_batch_size x
// gradient_accumulation_steps when max_steps > 0, else train_samples x num_train_epochs;
// steps are the plan's max_steps, as HF's _inner_training_loop counts them. In a job of P
// processes the total batch is P times larger.
nlohmann::json SpeedMetrics(const TrainingArgs& args, const StepPlan& plan, int64_t train_samples, double runtime_s);

}  // namespace lockstep
