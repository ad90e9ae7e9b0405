// Every restore is O(1) in the run's position: nothing is replayed, no skipped batch is
// drawn; the step log's check reads the log once at disk speed.
#include "trainer/run_resume.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "formats/json_file.h"
#include "formats/step_record.h"
#include "settings/location_settings.h"
#include "settings/resume_check.h"
#include "trainer/blas_info.h"
#include "trainer/data_parallel.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {

VerifyMode RunResume::verify_mode() const {
  return job_.world() > 1 ? VerifyMode::kChecksums : VerifyMode::kChecksumsOnLoad;
}

Status RunResume::ChooseCheckpoint(std::string* checkpoint, VerifyMode mode) {
  *checkpoint = *options_.resume_from;
  if (!checkpoint->empty()) return ValidateCheckpoint(*checkpoint, mode);
  CheckpointDir latest;
  std::vector<SkippedCheckpoint> skipped;
  Status st = FindLatestValidCheckpoint(args_.output_dir, mode, &latest, &skipped);
  for (const auto& s : skipped) {
    const std::string line = s.path + ": " + s.reason;
    if (std::find(skipped_checkpoints_.begin(), skipped_checkpoints_.end(), line) != skipped_checkpoints_.end())
      continue;  // reported by an earlier choice
    std::fprintf(stderr, "warning: skipping %s: %s\n", s.path.c_str(), s.reason.c_str());
    skipped_checkpoints_.push_back(line);
  }
  if (!st.ok()) {
    return Status::NotFound(st.message() + "; refusing to start from scratch (drop --resume for a fresh run)");
  }
  *checkpoint = latest.path;
  return Status::Ok();
}

Status RunResume::Load(std::string checkpoint, const std::function<std::vector<StateFile>()>& state_files) {
  json saved_args;  // a weights-only save cannot continue the run: refused, never resumed with a fresh optimizer
  if (ReadJsonFile((fs::path(checkpoint) / kTrainingArgsJsonFile).string(), &saved_args).ok() &&
      saved_args.is_object() && saved_args.value("save_only_model", false) == true) {
    return Status::InvalidArgument(checkpoint +
                                   " was saved with save_only_model: it holds the model alone (no optimizer, "
                                   "scheduler, sampler or generator state), so no resume from it continues the run");
  }
  const Status loaded = LoadCheckpoint(checkpoint, state_files(), verify_mode());
  if (!loaded.ok()) LOCKSTEP_RETURN_IF_ERROR(LoadNewestSoundCheckpoint(&checkpoint, loaded, state_files));
  checkpoint_ = checkpoint;
  return Status::Ok();
}

json RunResume::Event(int64_t step, const std::vector<std::string>& removed_leftovers) const {
  namespace k = event_key;
  json event = {{k::kAfterStep, step},
                {k::kCheckpoint, fs::path(checkpoint_).filename().string()},
                {k::kChangedSettings, changes_},
                {step_key::kResumeOverride, override_active_}};
  if (!skipped_checkpoints_.empty()) event[k::kSkippedCheckpoints] = skipped_checkpoints_;
  if (!removed_leftovers.empty()) event[k::kRemovedLeftovers] = removed_leftovers;
  if (!step_log_damage_.is_null()) event[k::kStepLogDamage] = step_log_damage_;
  if (saved_world_size_ > 0)
    event[k::kWorldSize] = {{k::kWorldSizeFrom, saved_world_size_}, {k::kWorldSizeTo, job_.world()}};
  return event;
}

// training_args.json: a resume may change only the settings that do not decide the run.
Status RunResume::CheckSavedSettings(const json& saved, const std::string& path) {
  const std::string checkpoint = fs::path(path).parent_path().string();
  std::vector<SettingChange> changes;
  LOCKSTEP_RETURN_IF_ERROR(DiffResumeSettings(saved, checkpoint, args_, &changes));
  LOCKSTEP_RETURN_IF_ERROR(CheckResumeSettings(changes, checkpoint, options_.resume_override));
  for (const auto& c : changes) {
    override_active_ |= !c.safe;
    if (c.knob == "world_size" && c.checkpoint.is_number_integer()) saved_world_size_ = c.checkpoint.get<int64_t>();
    if (IsOutputLocationSetting(c.knob)) continue;
    changes_.push_back({{"setting", c.knob}, {"checkpoint", c.checkpoint}, {"now", c.now}, {"safe", c.safe}});
  }
  if (override_active_ && options_.warn_on_override) {
    std::fprintf(stderr,
                 "warning: resuming %s with changed run-deciding settings (--resume-override); "
                 "this is a different run and its records are marked resume_override\n",
                 checkpoint.c_str());
  }
  return Status::Ok();
}

Status RunResume::ContinueStepLog(int64_t step, std::unique_ptr<StepLogWriter>* writer) {
  LOCKSTEP_RETURN_IF_ERROR(CheckBlasEnvironment());
  return OpenStepLog(step, writer);
}

// `*checkpoint` failed to load with `load_failure`. When it was chosen as the newest valid
// one and only the load read its tensor files, a damaged tensor file shows here rather
// than in the choice: read whole, it is skipped as the choice would have skipped it, and
// the newest checkpoint that verifies whole is loaded instead. Any other failure stands.
Status RunResume::LoadNewestSoundCheckpoint(std::string* checkpoint, const Status& load_failure,
                                            const std::function<std::vector<StateFile>()>& state_files) {
  if (!load_failure.IsCorruption() || verify_mode() != VerifyMode::kChecksumsOnLoad || !options_.resume_from->empty() ||
      ValidateCheckpoint(*checkpoint, VerifyMode::kChecksums).ok()) {
    return load_failure;
  }
  LOCKSTEP_RETURN_IF_ERROR(ChooseCheckpoint(checkpoint, VerifyMode::kChecksums));
  return LoadCheckpoint(*checkpoint, state_files(), VerifyMode::kChecksums);
}

// The BLAS library and its thread count decide a run's bits as the settings do, but come
// from the environment: a resume compares them with the step log's header and refuses a
// change (OMP_NUM_THREADS no longer reaches them: ResolveThreads sets the count) unless
// overridden. An unreadable header is left to the log's own check.
Status RunResume::CheckBlasEnvironment() {
  json header;
  if (!ReadStepLogHeader((fs::path(args_.output_dir) / kStepLogFile).string(), &header).ok()) return Status::Ok();
  const json changes = BlasChanges(header.value("blas", json()), BlasInfo());
  if (changes.empty()) return Status::Ok();
  std::string listed;
  for (const auto& c : changes) {
    listed += "\n  - " + c["setting"].get<std::string>() + ": checkpoint " + c["checkpoint"].dump() + ", now " +
              c["now"].dump();
    json row = c;
    row["safe"] = false;
    changes_.push_back(row);
  }
  if (!options_.resume_override) {
    return Status::InvalidArgument("refusing to resume from " + checkpoint_ +
                                   ": the BLAS library the run used has changed:" + listed +
                                   "\n(--resume-override resumes anyway and marks every later step record)");
  }
  override_active_ = true;
  return Status::Ok();
}

// Continues the step log right after the checkpoint's step: records a killed run wrote
// past it are cut off, so the file stays one valid log of one run. The checkpoint names
// the frame that ends with its step and the digest of every byte up to it, so damage
// anywhere before the cut is found before a single record is added. A checkpoint without
// that position (an older format) has the log scanned whole instead.
Status RunResume::OpenStepLog(int64_t step, std::unique_ptr<StepLogWriter>* writer) {
  const std::string path = (fs::path(args_.output_dir) / kStepLogFile).string();
  Status damage;
  if (step > 0 && saved_log_position_) {
    const uint64_t end = saved_log_position_->bytes, begin = saved_log_position_->last_frame;
    StepLogContents frame;
    damage = ReadStepLogFrame(path, begin, end, &frame);
    if (damage.ok() && (!EndsWithStep(frame) || frame.records.back().step != step)) {
      damage = Status::Corruption(path + ": the frame at byte " + std::to_string(begin) + " does not end with step " +
                                  std::to_string(step) + ", the checkpoint's step");
    }
    if (damage.ok()) {
      damage = StepLogWriter::OpenForAppend(path, end, saved_log_position_->xxh3_128, options_.step_log, writer);
    }
    if (damage.ok()) return Status::Ok();
    if (!damage.IsCorruption()) return damage;
  }
  StepLogContents log;
  Status read = damage.ok() ? ReadStepLog(path, &log) : damage;
  if (!read.ok()) return CutDamagedStepLog(path, read, step, writer);
  uint64_t keep = log.frame_ends.empty() ? 0 : log.frame_ends.front();  // the header frame
  if (step > 0) {
    const auto& r = log.records;
    size_t i = 0;
    while (i < r.size() && r[i].step != step) ++i;
    if (i == r.size()) {
      return CutDamagedStepLog(
          path,
          Status::Corruption(path + ": has no record of step " + std::to_string(step) + ", the checkpoint's step"),
          step, writer);
    }
    if (i + 1 < r.size() && log.record_frame_ends[i + 1] == log.record_frame_ends[i]) {
      return Status::Corruption(path + ": step " + std::to_string(step) +
                                " does not end a frame (the log was not flushed at the checkpoint)");
    }
    keep = log.record_frame_ends[i];
  }
  return StepLogWriter::OpenForAppend(path, keep, "", options_.step_log, writer);
}

// The step log does not hold the history the checkpoint saw. Without --resume-override the
// resume is refused. With it, the log is cut after its last intact frame at or before the
// checkpoint, the cut is recorded in the "resume" record, and every later step is marked.
Status RunResume::CutDamagedStepLog(const std::string& path, const Status& damage, int64_t step,
                                    std::unique_ptr<StepLogWriter>* writer) {
  if (!damage.IsCorruption()) return damage;
  StepLogContents log;
  const Status scan = ReadStepLog(path, &log);  // on damage, holds what precedes the damaged frame
  if (!options_.resume_override) {
    return Status::Corruption("refusing to resume: " + damage.message() +
                              (scan.ok() || scan.message() == damage.message() ? "" : "\n  found: " + scan.message()) +
                              "\n(--resume-override cuts the log before the damage, records the cut, and "
                              "continues as a marked, different run)");
  }
  // Keep whole frames only, and none holding a step after the checkpoint's.
  uint64_t keep = log.valid_bytes;
  for (size_t i = 0; i < log.records.size(); ++i) {
    if (log.records[i].step <= step) continue;
    const auto frame = std::lower_bound(log.frame_ends.begin(), log.frame_ends.end(), log.record_frame_ends[i]);
    keep = frame == log.frame_ends.begin() ? 0 : *(frame - 1);
    break;
  }
  int64_t last_kept = 0;
  for (size_t i = 0; i < log.records.size() && log.record_frame_ends[i] <= keep; ++i) {
    last_kept = log.records[i].step;
  }
  if (keep == 0)
    return Status::Corruption("refusing to resume: " + damage.message() + " (not even the header is intact)");
  std::fprintf(stderr,
               "warning: %s\nwarning: --resume-override: cutting %s at byte %llu (last step kept: %lld); "
               "this is a different run and its records are marked resume_override\n",
               damage.message().c_str(), path.c_str(), static_cast<unsigned long long>(keep),
               static_cast<long long>(last_kept));
  step_log_damage_ = {{"problem", damage.message()}, {"cut_at_byte", keep}, {"last_step_kept", last_kept}};
  override_active_ = true;
  return StepLogWriter::OpenForAppend(path, keep, "", options_.step_log, writer);
}

}  // namespace lockstep
