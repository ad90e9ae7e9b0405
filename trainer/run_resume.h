// Resuming a run, as its own piece: which checkpoint (HF's resume_from_checkpoint), whether
// its saved settings may continue this run, loading its state files (a damaged newest one
// passed over for the newest sound one), and continuing the step log right after the
// checkpoint's step once the log is proven to be the one the checkpoint saw. What it found
// (changed settings, skipped checkpoints, a cut log) goes into the log's "resume" event.
// Internal to trainer/.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/checkpoint.h"
#include "formats/status.h"
#include "formats/step_log.h"
#include "trainer/checkpoint_io.h"
#include "trainer/trainer.h"

namespace lockstep {

class DataParallelJob;

class RunResume {
 public:
  // `args`, `options` and `job` must outlive this. args.output_dir is the run's directory.
  RunResume(const TrainingArgs& args, const TrainOptions& options, const DataParallelJob& job)
      : args_(args), options_(options), job_(job) {}

  // How the checkpoint's tensor files are verified: as they load in a single process (one
  // read, not two); all of them before any loads in a job, so that rank 0's choice stands
  // for every rank (a damaged file found mid-load could not be skipped in step).
  VerifyMode verify_mode() const;

  // HF's resume_from_checkpoint: "" is the newest valid checkpoint of output_dir (newer
  // invalid ones are skipped, each with a warning, once), anything else that checkpoint.
  // NotFound when there is none: a resume never starts from scratch.
  Status ChooseCheckpoint(std::string* checkpoint, VerifyMode mode);

  // Restores the run from `checkpoint` through `state_files()`, in their order. A
  // save_only_model checkpoint is refused (it cannot continue the run). When the newest
  // checkpoint was chosen and a tensor file proves damaged as it loads, the newest one that
  // verifies whole is loaded instead.
  Status Load(std::string checkpoint, const std::function<std::vector<StateFile>()>& state_files);

  // training_args.json as a state file loads: a resume may change only the settings that
  // do not decide the run; others are refused, or with --resume-override, recorded and the
  // run marked.
  Status CheckSavedSettings(const nlohmann::json& saved, const std::string& path);
  // loop_state.json's record of where the checkpoint's step ends in the step log.
  void SetSavedLogPosition(std::optional<StepLogPosition> position) { saved_log_position_ = std::move(position); }

  // Rank 0, after Load: checks the BLAS environment against the log's header, then opens
  // the step log for appending right after step `step` (the checkpoint's), records a
  // killed run wrote past it cut off, once the log up to there is proven intact. A damaged
  // log is refused, or with --resume-override, cut before the damage and the run marked.
  Status ContinueStepLog(int64_t step, std::unique_ptr<StepLogWriter>* writer);

  // The "resume" event's fields (event_key::): the step, the checkpoint, every changed
  // setting, whether the run is marked, and what was skipped, removed or cut.
  nlohmann::json Event(int64_t step, const std::vector<std::string>& removed_leftovers) const;

  // The checkpoint loaded; "" before Load.
  const std::string& checkpoint() const { return checkpoint_; }
  const std::vector<std::string>& skipped_checkpoints() const { return skipped_checkpoints_; }
  // Resumed despite unsafe changes: every later step record is marked resume_override.
  bool override_active() const { return override_active_; }
  // The world size the checkpoint was saved at, where it differs from this job's (a
  // world_invariant run resumed at another size, or an overridden resume); 0 otherwise.
  int64_t saved_world_size() const { return saved_world_size_; }

 private:
  Status LoadNewestSoundCheckpoint(std::string* checkpoint, const Status& load_failure,
                                   const std::function<std::vector<StateFile>()>& state_files);
  Status CheckBlasEnvironment();
  Status OpenStepLog(int64_t step, std::unique_ptr<StepLogWriter>* writer);
  Status CutDamagedStepLog(const std::string& path, const Status& damage, int64_t step,
                           std::unique_ptr<StepLogWriter>* writer);

  const TrainingArgs& args_;
  const TrainOptions& options_;
  const DataParallelJob& job_;
  std::string checkpoint_;
  std::vector<std::string> skipped_checkpoints_;  // "path: reason"
  bool override_active_ = false;
  int64_t saved_world_size_ = 0;
  std::vector<nlohmann::json> changes_;  // every changed setting, for the event
  std::optional<StepLogPosition> saved_log_position_;
  nlohmann::json step_log_damage_;  // set when --resume-override cut a damaged log
};

}  // namespace lockstep
