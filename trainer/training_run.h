// TrainingRun: the state and steps of one training run, shared by the loop (trainer.cc)
// and resume (training_resume.cc). Internal to trainer/: the public API is trainer.h.
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
#include "trainer/background_save.h"
#include "trainer/checkpoint_io.h"
#include "trainer/data_parallel.h"
#include "trainer/datasets.h"
#include "trainer/loop_state.h"
#include "trainer/models.h"
#include "trainer/progress.h"
#include "trainer/sampler.h"
#include "trainer/step_observer.h"
#include "trainer/trainer.h"

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
  static double SteadySeconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  // Adds the seconds its scope lasts to `*total` (recording_s_: what the step log costs).
  struct ScopeSeconds {
    explicit ScopeSeconds(double* t) : total(t) {}
    ~ScopeSeconds() { *total += SteadySeconds() - start; }
    double* total;
    double start = SteadySeconds();
  };

  bool IsRankZero() const { return job_.IsRankZero(); }

  // run_directory.cc
  Status PrepareRunDirectory(std::string* checkpoint);
  Status LockOutputDir();
  Status RemoveStagingLeftovers();
  Status PrepareOutputDir();
  VerifyMode ResumeVerifyMode() const;
  Status ChooseResumeCheckpoint(std::string* checkpoint, VerifyMode mode);
  Status ResolveThreads(const std::string& checkpoint);
  Status Resume(std::string checkpoint);
  Status LoadNewestSoundCheckpoint(std::string* checkpoint, const Status& load_failure);
  Status CheckBlasEnvironment(const std::string& checkpoint);
  Status OpenStepLogForResume();
  Status CutDamagedStepLog(const std::string& path, const Status& damage);
  // Every piece of state a checkpoint holds, in save and load order (training_state.cc).
  std::vector<StateFile> StateFiles();
  Status CheckSavedSettings(const json& saved, const std::string& path);
  Status LoadRng(const json& j, const std::string& path);
  // A signal reached this process. In a job, the ranks agree on it after each step
  // (AgreeOnStep), so every rank stops, and checkpoints, at the same step.
  bool SignalArrived() const { return options_.stop_signal != nullptr && *options_.stop_signal != 0; }
  bool StopRequested() const { return job_.world() > 1 ? job_.stop_agreed() : SignalArrived(); }
  void Emit(const char* event, int64_t step) const {
    if (options_.hooks.on_event) options_.hooks.on_event(event, step);
  }
  // One optimizer step in named parts (train_step.cc), as llm.c's loop reads.
  Status TrainStep(int64_t epoch, int64_t update);
  Status BeginStep(int64_t epoch, int64_t update, StepWork* w);
  void NextBatches(StepWork* w);
  void ForwardBackward(StepWork* w);
  Status Update(StepWork* w);
  Status RecordStep(StepWork* w);
  Status LogStepRecord(StepWork* w);
  Status StopIfAsked(bool* stopped);
  Status LogEvaluateSave(const StepControl& control);
  Status EvaluateAndLog(bool in_loop, bool* new_best);
  Status Evaluate(json* metrics);
  bool UpdateBest(const json& metrics);
  Status KeepOnlyTheBest();
  // checkpoint_saving.cc: a checkpoint now, synchronously or (--save_async) in the
  // background; CollectSave takes in a background save that ended (all of it with `wait`);
  // WaitForSnapshotCopy holds the update until a background save has copied the tensors.
  Status SaveCheckpointNow();
  Status CollectSave(bool wait);
  void WaitForSnapshotCopy();
  void NoteSaved(int64_t step, const std::string& dir);
  void NoteBestCheckpoint(int64_t step);
  // The generator states as a step begins; `raw` leaves the CPU state unhashed for the
  // step log's encoder to hash.
  GeneratorStates RngStates(bool full, bool raw = true);
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
  std::unique_ptr<StepLogWriter> step_log_;
  StepObservers observers_;  // a replay, a module trace: what the hooks ask for
  std::unique_ptr<ProgressDisplay> progress_;
  TrainerState state_;
  StepIntervals intervals_;  // logging, eval and save steps as the TrainerState resolved them

  // Where the loop starts: (0, 0) for a fresh run, the checkpoint's position on resume.
  EpochSampler::Position resume_at_;  // where the loop starts: (0, 0) unless a checkpoint says
  std::string resumed_from_;
  std::vector<std::string> skipped_checkpoints_;
  bool resume_override_active_ = false;  // resumed despite unsafe changes: records are marked
  std::vector<json> resume_changes_;     // every changed setting, for the "resume" record
  // Where the checkpoint's step ends in the step log, and the log's digest up to there.
  std::optional<StepLogPosition> saved_log_position_;
  json step_log_damage_;  // set when --resume-override cut a damaged log

  std::vector<int64_t> saved_steps_;
  int64_t last_saved_step_ = -1;
  bool stopped_early_ = false;
  int stopped_by_signal_ = 0;

  LossTotals losses_;  // HF's loss bookkeeping, in loop_state.json
  double last_lr_ = 0.0;
  float last_grad_norm_ = 0.0f;
  double recording_s_ = 0;        // what building and queueing step records cost the loop
  double save_stall_s_ = 0;       // what checkpoint saves held the loop up, waits included
  double final_save_wait_s_ = 0;  // the end's wait for a last --save_async save
  GeneratorState sampler_state_;  // RngStates' sampler entry, kept for its epoch
  int64_t sampler_state_epoch_ = -1;
  double start_time_ = 0.0;
  int64_t first_step_ = 0;  // global_step when this process began training
  // --save_async's copies of the tensors, reused by each save in turn.
  SnapshotBuffers snapshot_buffers_;
  // Last: its destructor waits for a save still running (its job reads snapshot_buffers_).
  BackgroundSave background_save_;
};

}  // namespace lockstep
