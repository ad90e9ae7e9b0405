// The checkpoint saver (checkpoint_saver.h).
#include "trainer/checkpoint_saver.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "formats/checkpoint.h"
#include "formats/rotation.h"
#include "trainer/best_checkpoint.h"
#include "trainer/scope_seconds.h"

namespace fs = std::filesystem;

namespace lockstep {
CheckpointSaver::CheckpointSaver(const TrainingArgs& args, DataParallelJob* job, Notify notify,
                                 std::function<void()> before_snapshot_copy)
    : args_(args), job_(job), notify_(std::move(notify)), before_snapshot_copy_(std::move(before_snapshot_copy)) {}

Status CheckpointSaver::Save(int64_t step, std::vector<StateFile> pieces, StepLogWriter* log, TrainerState* state) {
  ScopeSeconds stall(&stall_s_);
  // One save in flight: the previous one commits (and rotates) before this one starts, so
  // rotation and best_model_checkpoint below see every earlier checkpoint.
  LOCKSTEP_RETURN_IF_ERROR(Collect(/*wait=*/true));
  if (job_->IsRankZero()) NoteBestCheckpoint(args_.output_dir, step, state);
  // save_only_model: the model alone, with the settings and the trainer state (HF keeps
  // training_args.bin and trainer_state.json beside the weights).
  if (args_.save_only_model) {
    pieces.erase(std::remove_if(pieces.begin(), pieces.end(),
                                [](const StateFile& f) {
                                  return f.name != kTrainingArgsJsonFile && f.name != kTrainerStateFile &&
                                         f.name != kModelFile;
                                }),
                 pieces.end());
  }
  if (job_->IsRankZero()) {
    // No background write of the step log may fall among the save's own I/O calls (a crash
    // probe counts them), so the log's encoder finishes its queue first.
    LOCKSTEP_RETURN_IF_ERROR(log->Drain());
    notify_("save", step, "");
    // The step log must durably cover every step a checkpoint holds (loop_state.json records
    // where it ends and its digest, so this comes first).
    LOCKSTEP_RETURN_IF_ERROR(log->Flush(/*sync=*/true));
  } else {  // the other ranks write only their own generator state
    pieces.erase(
        std::remove_if(pieces.begin(), pieces.end(), [&](const StateFile& f) { return f.name != job_->RngFileName(); }),
        pieces.end());
  }
  CheckpointSnapshot snapshot;
  LOCKSTEP_RETURN_IF_ERROR(SnapshotCheckpoint(pieces, args_.save_async ? &snapshot_buffers_ : nullptr, &snapshot));
  std::unique_ptr<CheckpointStaging> staging;
  LOCKSTEP_RETURN_IF_ERROR(job_->StageRankFiles(args_.output_dir, step, snapshot, &staging));
  last_saved_step_ = step;
  if (!job_->IsRankZero()) {
    NoteBestCheckpoint(args_.output_dir, step, state);  // after the barrier: rank 0's earlier commits are visible
    saved_steps_.push_back(step);
    return Status::Ok();
  }
  const int64_t limit = args_.save_total_limit.value_or(0);
  const int64_t best = state->best_model_checkpoint && state->best_global_step ? *state->best_global_step : kNoBestStep;
  const std::string run_dir = args_.output_dir;
  if (args_.save_async) {
    std::shared_ptr<CheckpointStaging> owned(std::move(staging));
    // The tensors are copied off the loop, while the next step's forward and backward run
    // (Update waits for the copy before it changes them).
    background_save_.Start(
        step,
        [this] {
          if (before_snapshot_copy_) before_snapshot_copy_();
          return snapshot_buffers_.Fill();
        },
        [owned, run_dir, limit, best, snapshot = std::move(snapshot)](std::string* dir) {
          LOCKSTEP_RETURN_IF_ERROR(CommitSnapshot(owned.get(), snapshot, dir));
          return RotateCheckpoints(run_dir, limit, best);
        });
    return Status::Ok();
  }
  std::string dir;
  LOCKSTEP_RETURN_IF_ERROR(CommitSnapshot(staging.get(), snapshot, &dir));
  NoteSaved(step, dir);
  return RotateCheckpoints(run_dir, limit, best);
}

// The copy of an async save's tensors runs while the next step's forward and backward do;
// the update must not change them before it ends. Counted as the save's stall.
void CheckpointSaver::WaitForSnapshotCopy() {
  if (!background_save_.pending()) return;
  ScopeSeconds stall(&stall_s_);
  background_save_.WaitFilled();
}

Status CheckpointSaver::Collect(bool wait) {
  if (!background_save_.pending()) return Status::Ok();
  const int64_t step = background_save_.step();
  Status status;
  std::string dir;
  if (wait) {
    status = background_save_.Wait(&dir);
  } else if (!background_save_.Poll(&status, &dir)) {
    return Status::Ok();  // still writing
  }
  LOCKSTEP_RETURN_IF_ERROR(status);
  NoteSaved(step, dir);
  return Status::Ok();
}

void CheckpointSaver::NoteSaved(int64_t step, const std::string& dir) {
  saved_steps_.push_back(step);
  notify_("saved", step, dir);
}

}  // namespace lockstep
