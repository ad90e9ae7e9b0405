// TrainingRun: one training run, its loop (trainer.cc, train_step.cc) and the state a
// checkpoint holds (training_state.cc). What it holds does its own work: the job's ranks
// (DataParallelJob), resuming (RunResume), saving checkpoints (CheckpointSaver), the
// generators (RunGenerators), what watches or steers a run from outside the loop
// (StepObservers), evaluation and the best model (evaluation.h, best_checkpoint.h), the run
// directory (run_directory.h). Internal to trainer/: the public API is trainer.h.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/checkpoint.h"
#include "formats/run_lock.h"
#include "formats/step_log.h"
#include "formats/step_record.h"
#include "settings/lr_scheduler.h"
#include "settings/step_control.h"
#include "settings/step_plan.h"
#include "settings/trainer_state.h"
#include "trainer/adamw.h"
#include "trainer/best_checkpoint.h"
#include "trainer/checkpoint_io.h"
#include "trainer/checkpoint_saver.h"
#include "trainer/data_parallel.h"
#include "trainer/datasets.h"
#include "trainer/evaluation.h"
#include "trainer/loop_state.h"
#include "trainer/models.h"
#include "trainer/progress.h"
#include "trainer/run_generators.h"
#include "trainer/run_resume.h"
#include "trainer/sampler.h"
#include "trainer/scope_seconds.h"
#include "trainer/step_observer.h"
#include "trainer/step_recording.h"
#include "trainer/trainer.h"
#include "trainer/world_invariant.h"

namespace lockstep {

using nlohmann::json;

class TrainingRun {
 public:
  TrainingRun(const TrainingArgs& args, const TrainOptions& options) : args_(args), options_(options) {}

  Status Setup();
  Status Train();
  Status Finish(TrainResult* result);

 private:
  bool ResultsWritten() const;
  double Now() const { return options_.hooks.clock ? options_.hooks.clock() : SteadySeconds(); }

  bool IsRankZero() const { return job_.IsRankZero(); }

  // run_directory.cc: rank 0 prepares the directory and chooses the checkpoint for the job.
  Status PrepareRunDirectory(std::string* checkpoint);
  // Every piece of state a checkpoint holds, in save and load order (training_state.cc).
  std::vector<StateFile> StateFiles();
  // The run restored from `checkpoint` (resume_ does the work), its step log continued
  // with a "resume" event (training_state.cc).
  Status Resume(const std::string& checkpoint);
  Status SavedRanksAlike(const std::string& dir, int64_t saved_world) const;
  // A signal reached this process. In a job, the ranks agree on it after each step
  // (DataParallelJob::AgreeOnStep), so every rank stops, and checkpoints, at the same step.
  bool SignalArrived() const { return options_.stop_signal != nullptr && *options_.stop_signal != 0; }
  bool StopRequested() const { return job_.world() > 1 ? job_.stop_agreed() : SignalArrived(); }
  void Emit(const char* event, int64_t step) const {
    if (options_.hooks.on_event) options_.hooks.on_event(event, step);
  }
  // One optimizer step in named parts (train_step.cc), as llm.c's loop reads.
  Status TrainStep(int64_t epoch, int64_t update);
  Status BeginStep(int64_t epoch, int64_t update, StepWork* w);
  void NextBatches(StepWork* w);
  Status ForwardBackward(StepWork* w);
  Status Update(StepWork* w);
  Status RecordStep(StepWork* w);
  Status LogStepRecord(StepWork* w);
  Status StopIfAsked(bool* stopped);
  Status LogEvaluateSave(const StepControl& control);
  Status EvaluateAndLog(bool in_loop, bool* new_best);
  // A checkpoint of the run as it is now (saver_ takes it, synchronously or in the background).
  Status SaveCheckpointNow() { return saver_.Save(state_.global_step, StateFiles(), step_log_.get(), &state_); }
  json StepLogHeader() const;

  TrainingArgs args_;
  TrainOptions options_;
  std::unique_ptr<RunLock> lock_;  // held by rank 0 from Setup to the end: one job per output_dir
  DataParallelJob job_;            // the ranks of this run (one process: rank 0 of 1)
  std::vector<std::string> removed_leftovers_;
  torch::Device device_ = torch::kCPU;
  DatasetPair data_;
  int64_t items_per_sample_ = 1;  // 1 for mlp, block_size tokens for gpt
  std::shared_ptr<Model> model_;
  int64_t num_parameters_ = 0;
  std::unique_ptr<AdamW> optimizer_;
  StepPlan plan_;
  LrScheduler scheduler_;  // scheduler.json
  std::unique_ptr<EpochSampler> sampler_;
  std::unique_ptr<RunGenerators> generators_;
  std::unique_ptr<WorldInvariantStep> invariant_;  // --world_invariant: the step's gradient, unit by unit
  std::unique_ptr<StepRecording> recording_;       // the step record built, and what that costs the loop
  std::unique_ptr<StepLogWriter> step_log_;
  StepObservers observers_;  // a replay, a module trace: what the hooks ask for
  std::unique_ptr<ProgressDisplay> progress_;
  TrainerState state_;
  StepIntervals intervals_;  // logging, eval and save steps as the TrainerState resolved them

  RunResume resume_{args_, options_, job_};
  // Where the loop starts: (0, 0) for a fresh run, the checkpoint's position on resume.
  EpochSampler::Position resume_at_;

  bool stopped_early_ = false;
  int stopped_by_signal_ = 0;

  LossTotals losses_;  // HF's loss bookkeeping, in loop_state.json
  double last_lr_ = 0.0;
  float last_grad_norm_ = 0.0f;
  double final_save_wait_s_ = 0;  // the end's wait for a last --save_async save
  double start_time_ = 0.0;
  int64_t first_step_ = 0;  // global_step when this process began training
  // Last: its destructor waits for a save still running.
  CheckpointSaver saver_{args_, &job_,
                         [this](const char* event, int64_t step, const std::string& dir) {
                           Emit(event, step);
                           if (!dir.empty()) progress_->Note("saved " + dir);
                         },
                         options_.hooks.before_snapshot_copy};
};

}  // namespace lockstep
