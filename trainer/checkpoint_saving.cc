// Taking a checkpoint during training: HF's _save_checkpoint and _rotate_checkpoints, with
// the step log made durable first. A save snapshots every StateFile at the step boundary;
// synchronously (the default) it is written, committed and rotated before the next step;
// with --save_async the snapshot owns copies and a background thread writes, commits and
// rotates it while training goes on. Either way the bytes committed are the same. In a
// data-parallel job every rank writes its own generator state into rank 0's staging
// directory first (StageRankFiles), so the commit covers all of them.
#include <algorithm>
#include <filesystem>
#include <utility>

#include "formats/checkpoint.h"
#include "formats/rotation.h"
#include "trainer/training_run.h"

namespace fs = std::filesystem;

namespace lockstep {

Status TrainingRun::SaveCheckpointNow() {
  ScopeSeconds stall(&save_stall_s_);
  // One save in flight: the previous one commits (and rotates) before this one starts, so
  // rotation and best_model_checkpoint below see every earlier checkpoint.
  LOCKSTEP_RETURN_IF_ERROR(CollectSave(/*wait=*/true));
  const int64_t step = state_.global_step;
  if (IsRankZero()) NoteBestCheckpoint(step);
  std::vector<StateFile> pieces = StateFiles();
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
  if (IsRankZero()) {
    // No background write of the step log may fall among the save's own I/O calls (a crash
    // probe counts them), so the log's encoder finishes its queue first.
    LOCKSTEP_RETURN_IF_ERROR(step_log_->Drain());
    Emit("save", step);
    // The step log must durably cover every step a checkpoint holds (loop_state.json records
    // where it ends and its digest, so this comes first).
    LOCKSTEP_RETURN_IF_ERROR(step_log_->Flush(/*sync=*/true));
  } else {  // the other ranks write only their own generator state
    pieces.erase(
        std::remove_if(pieces.begin(), pieces.end(), [&](const StateFile& f) { return f.name != job_.RngFileName(); }),
        pieces.end());
  }
  CheckpointSnapshot snapshot;
  LOCKSTEP_RETURN_IF_ERROR(SnapshotCheckpoint(pieces, args_.save_async ? &snapshot_buffers_ : nullptr, &snapshot));
  std::unique_ptr<CheckpointStaging> staging;
  LOCKSTEP_RETURN_IF_ERROR(job_.StageRankFiles(args_.output_dir, step, snapshot, &staging));
  last_saved_step_ = step;
  if (!IsRankZero()) {
    NoteBestCheckpoint(step);  // after the barrier: rank 0's earlier commits are visible
    saved_steps_.push_back(step);
    return Status::Ok();
  }
  const int64_t limit = args_.save_total_limit.value_or(0);
  const int64_t best = state_.best_model_checkpoint && state_.best_global_step ? *state_.best_global_step : kNoBestStep;
  const std::string run_dir = args_.output_dir;
  if (args_.save_async) {
    std::shared_ptr<CheckpointStaging> owned(std::move(staging));
    // The tensors are copied off the loop, while the next step's forward and backward run
    // (Update waits for the copy before it changes them).
    background_save_.Start(
        step,
        [this] {
          if (options_.hooks.before_snapshot_copy) options_.hooks.before_snapshot_copy();
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
void TrainingRun::WaitForSnapshotCopy() {
  if (!background_save_.pending()) return;
  ScopeSeconds stall(&save_stall_s_);
  background_save_.WaitFilled();
}

// HF's best_model_checkpoint: the best step's directory, once that checkpoint exists.
void TrainingRun::NoteBestCheckpoint(int64_t step) {
  if (!state_.best_global_step) return;
  const std::string best_dir = (fs::path(args_.output_dir) / CheckpointDirName(*state_.best_global_step)).string();
  if (*state_.best_global_step == step || fs::exists(best_dir)) state_.best_model_checkpoint = best_dir;
}

Status TrainingRun::CollectSave(bool wait) {
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

void TrainingRun::NoteSaved(int64_t step, const std::string& dir) {
  saved_steps_.push_back(step);
  Emit("saved", step);
  progress_->Note("saved " + dir);
}

}  // namespace lockstep
