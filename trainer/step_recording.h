// The step record as the loop builds it, and what building it costs the loop: the
// generator states as the step begins, the sample ids as they are drawn, every rank's part
// gathered into rank 0's record, and the record handed to the step log. The loop calls it
// at its phases (train_step.cc); it keeps its own timer, so the loop carries none.
// Internal to trainer/.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

#include "formats/status.h"
#include "formats/step_log.h"
#include "trainer/step_observer.h"

namespace lockstep {

class DataParallelJob;
class RunGenerators;
struct TrainOptions;

class StepRecording {
 public:
  // Each must outlive this; `log` is where the run keeps its step log writer (rank 0's; a
  // resume replaces it), read at each Append.
  StepRecording(const TrainOptions& options, DataParallelJob* job, RunGenerators* generators,
                const std::unique_ptr<StepLogWriter>* log)
      : options_(options), job_(job), generators_(generators), log_(log) {}

  // Whether step w->step builds a record (always, unless `lockstep bench` measures a run
  // without; or when an observer reads it), and if so its generator states as it begins:
  // whole every TrainOptions::rng_full_state_every steps, digests between. Sets
  // w->recording.
  void BeginStep(bool observers_read_records, StepWork* w);
  // A micro-batch's sample ids, as the sampler drew them, into the record.
  void AddBatch(const at::Tensor& ids, StepWork* w);
  // In a job, the other ranks' batches and generator states into rank 0's record.
  Status GatherRanks(StepWork* w);
  // Rank 0 hands the record to the step log, whose encoder makes it JSON off the loop.
  Status Append(StepWork* w);

  // What the four calls above cost, in seconds, over the run.
  double seconds() const { return seconds_; }

 private:
  const TrainOptions& options_;
  DataParallelJob* job_;
  RunGenerators* generators_;
  const std::unique_ptr<StepLogWriter>* log_;
  double seconds_ = 0;
};

}  // namespace lockstep
