// The data-parallel job this process is one rank of, as the Hugging Face Trainer runs one
// under DDP: every rank holds the whole model and trains on its shard of each epoch's
// batches (settings/batch_shard.h); the gradients are averaged by one all-reduce per
// optimizer step. Rank 0 owns the run directory: its lock, the step log, the results and
// the replicated model and optimizer files; every rank writes its own generator state into
// each checkpoint, as HF's rng_state_{rank}. One process is rank 0 of 1, and none of these
// calls talk. Internal to trainer/.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/status.h"
#include "formats/step_record.h"
#include "settings/training_args.h"
#include "trainer/checkpoint_io.h"  // CheckpointSnapshot
#include "trainer/distributed.h"

namespace at {
class Tensor;
}

namespace lockstep {

class DataParallelJob {
 public:
  // Reads the launcher's variables (process/job_env.h), checks them against --world_size
  // (recording the size resolved in `args`), picks this rank's device and, in a job of more
  // than one process, connects to the others.
  Status Join(TrainingArgs* args, c10::Device* device);

  int64_t rank() const { return rank_; }
  int64_t world() const { return world_; }
  bool IsRankZero() const { return rank_ == 0; }
  const char* backend() const { return group_ ? group_->backend() : "none"; }
  // This rank's generator-state file in a checkpoint (HF's rng_state_{rank}.pth, as JSON).
  std::string RngFileName() const;

  // Rank 0's `decision` (its value when `st` is ok) reaches every rank under `key`; a
  // failure is published too, so the other ranks stop with it instead of waiting. Rank 0
  // gets `st` back; another rank gets the value, or an IOError naming `what` rank 0 failed.
  Status ShareRankZeroDecision(const std::string& key, const Status& st, std::string* decision,
                               const std::string& what);

  // Every rank starts from rank 0's weights, as DDP's constructor makes sure.
  Status BroadcastParameters(const std::vector<at::Tensor>& parameters);
  // One all-reduce of every gradient, then / world size.
  Status AllReduceGradients(const std::vector<std::pair<std::string, at::Tensor>>& params);
  // Every rank's `mine` (one shape on every rank), in rank order (world_invariant's units).
  Status AllGather(const at::Tensor& mine, std::vector<at::Tensor>* all);
  // After a step: the mean loss over the ranks, and whether a stop signal reached any rank
  // (then stop_agreed(): every rank stops, and checkpoints, at the same step).
  Status AgreeOnStep(float* loss, bool signal_arrived);
  bool stop_agreed() const { return stop_agreed_; }
  // Whether any rank says stop: every rank gets the same answer.
  Status AnyRankSays(bool* stop, const char* what);
  // The other ranks' batches and generator states into rank 0's record (`rng`: this rank's).
  Status GatherRankRecords(const GeneratorStates& rng, StepRecord* record);
  Status SumOverRanks(std::vector<double>* values);
  // A checkpoint of the job: rank 0 begins the staging directory under `output_dir`, every
  // other rank writes `mine` into it; all meet at a barrier before rank 0 commits.
  Status StageRankFiles(const std::string& output_dir, int64_t step, const CheckpointSnapshot& mine,
                        std::unique_ptr<CheckpointStaging>* staging);

  // The gradients' collectives (the all-reduce, or world_invariant's gathers), waits for slower ranks included.
  double allreduce_seconds() const { return allreduce_s_; }

 private:
  std::unique_ptr<ProcessGroup> group_;  // set in a job of more than one process
  int64_t rank_ = 0;
  int64_t world_ = 1;
  bool stop_agreed_ = false;
  double allreduce_s_ = 0;
};

}  // namespace lockstep
