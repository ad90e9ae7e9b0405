// Taking a run's checkpoints during training: HF's _save_checkpoint and
// _rotate_checkpoints, with the step log made durable first. A save snapshots every
// StateFile at the step boundary; synchronously (the default) it is written, committed and
// rotated before the next step; with --save_async the snapshot owns copies and a background
// thread writes, commits and rotates it while training goes on. Either way the bytes
// committed are the same. In a data-parallel job every rank writes its own generator state
// into rank 0's staging directory first (DataParallelJob::StageRankFiles), so the commit
// covers all of them. Internal to trainer/.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/status.h"
#include "formats/step_log.h"
#include "settings/trainer_state.h"
#include "settings/training_args.h"
#include "trainer/background_save.h"
#include "trainer/checkpoint_io.h"
#include "trainer/data_parallel.h"

namespace lockstep {

class CheckpointSaver {
 public:
  // Told as a save goes: ("save", step, "") before checkpoint-step is written, ("saved",
  // step, its directory) once it is committed.
  using Notify = std::function<void(const char* event, int64_t step, const std::string& dir)>;
  // `before_snapshot_copy`: tests only (TrainHooks), run before a --save_async copy.
  CheckpointSaver(const TrainingArgs& args, DataParallelJob* job, Notify notify,
                  std::function<void()> before_snapshot_copy);
  CheckpointSaver(const CheckpointSaver&) = delete;
  CheckpointSaver& operator=(const CheckpointSaver&) = delete;

  // Saves checkpoint-`step` of `pieces` (the run's StateFiles, in save order): the previous
  // save is committed first; rank 0 then drains and fsyncs `log`, so it covers the step,
  // and notes HF's best_model_checkpoint in `state`. A rank other than 0 writes its
  // generator state only. With --save_async, returns once the write is under way.
  Status Save(int64_t step, std::vector<StateFile> pieces, StepLogWriter* log, TrainerState* state);
  // Takes in a background save that ended (with `wait`, waits for it): its error, or its
  // "saved" notice.
  Status Collect(bool wait);
  // Holds the next optimizer update until a background save has copied the tensors.
  void WaitForSnapshotCopy();

  int64_t last_saved_step() const { return last_saved_step_; }
  const std::vector<int64_t>& saved_steps() const { return saved_steps_; }
  double stall_seconds() const { return stall_s_; }  // what saves held the loop up, waits included

 private:
  void NoteSaved(int64_t step, const std::string& dir);

  const TrainingArgs& args_;
  DataParallelJob* job_;
  Notify notify_;
  std::function<void()> before_snapshot_copy_;
  std::vector<int64_t> saved_steps_;
  int64_t last_saved_step_ = -1;
  double stall_s_ = 0;
  SnapshotBuffers snapshot_buffers_;  // --save_async's copies of the tensors, reused by each save
  // Last: its destructor waits for a save still running (its job reads snapshot_buffers_).
  BackgroundSave background_save_;
};

}  // namespace lockstep
