// Resuming a run: pick the checkpoint, restore every piece of state from it (the registry
// in training_state.cc), prove the step log is the one the checkpoint saw, and continue it
// right after the checkpoint's step. Every restore is O(1) in the run's position: nothing
// is replayed, no skipped batch is drawn; the log check reads the log once at disk speed.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/step_log.h"
#include "trainer/blas_info.h"
#include "trainer/training_run.h"

namespace fs = std::filesystem;

namespace lockstep {

// A single process verifies a checkpoint's tensor files as it loads them: one read, not
// two. The ranks of a job verify every byte before any loads, so that rank 0's choice
// stands for all of them (a damaged file found mid-load could not be skipped in step).
VerifyMode TrainingRun::ResumeVerifyMode() const {
  return job_.world() > 1 ? VerifyMode::kChecksums : VerifyMode::kChecksumsOnLoad;
}

// HF's resume_from_checkpoint: "" is the newest valid checkpoint of output_dir (newer
// invalid ones are skipped, each with a warning), anything else that checkpoint.
Status TrainingRun::ChooseResumeCheckpoint(std::string* checkpoint, VerifyMode mode) {
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

// Restores everything that decides the rest of the run from `checkpoint`, then continues
// its step log.
Status TrainingRun::Resume(std::string checkpoint) {
  json saved_args;  // a weights-only save cannot continue the run: refused, never resumed with a fresh optimizer
  if (ReadJsonFile((fs::path(checkpoint) / kTrainingArgsJsonFile).string(), &saved_args).ok() &&
      saved_args.is_object() && saved_args.value("save_only_model", false) == true) {
    return Status::InvalidArgument(checkpoint +
                                   " was saved with save_only_model: it holds the model alone (no optimizer, "
                                   "scheduler, sampler or generator state), so no resume from it continues the run");
  }
  const Status loaded = LoadCheckpoint(checkpoint, StateFiles(), ResumeVerifyMode());
  if (!loaded.ok()) LOCKSTEP_RETURN_IF_ERROR(LoadNewestSoundCheckpoint(&checkpoint, loaded));
  resumed_from_ = checkpoint;
  if (!IsRankZero()) return Status::Ok();  // rank 0 continues the job's step log
  LOCKSTEP_RETURN_IF_ERROR(CheckBlasEnvironment(checkpoint));
  LOCKSTEP_RETURN_IF_ERROR(OpenStepLogForResume());
  namespace k = event_key;
  json event = {{k::kAfterStep, state_.global_step},
                {k::kCheckpoint, fs::path(checkpoint).filename().string()},
                {k::kChangedSettings, resume_changes_},
                {step_key::kResumeOverride, resume_override_active_}};
  if (!skipped_checkpoints_.empty()) event[k::kSkippedCheckpoints] = skipped_checkpoints_;
  if (!removed_leftovers_.empty()) event[k::kRemovedLeftovers] = removed_leftovers_;
  if (!step_log_damage_.is_null()) event[k::kStepLogDamage] = step_log_damage_;
  if (options_.faults.resume != ResumeFault::kNone) event[k::kFaultInjected] = ResumeFaultName(options_.faults.resume);
  LOCKSTEP_RETURN_IF_ERROR(step_log_->AppendEvent(k::kResume, event));
  Emit("resumed", state_.global_step);
  return Status::Ok();
}

// `*checkpoint` failed to load with `load_failure`. When it was chosen as the newest valid
// one and only the load read its tensor files, a damaged tensor file shows here rather
// than in the choice: read whole, it is skipped as the choice would have skipped it, and
// the newest checkpoint that verifies whole is loaded instead. Any other failure stands.
Status TrainingRun::LoadNewestSoundCheckpoint(std::string* checkpoint, const Status& load_failure) {
  if (!load_failure.IsCorruption() || ResumeVerifyMode() != VerifyMode::kChecksumsOnLoad ||
      !options_.resume_from->empty() || ValidateCheckpoint(*checkpoint, VerifyMode::kChecksums).ok()) {
    return load_failure;
  }
  LOCKSTEP_RETURN_IF_ERROR(ChooseResumeCheckpoint(checkpoint, VerifyMode::kChecksums));
  return LoadCheckpoint(*checkpoint, StateFiles(), VerifyMode::kChecksums);
}

// The BLAS library and its thread count decide a run's bits as the settings do, but come
// from the environment: a resume compares them with the step log's header and refuses a
// change (OMP_NUM_THREADS no longer reaches them: ResolveThreads sets the count) unless
// overridden. An unreadable header is left to the log's own check.
Status TrainingRun::CheckBlasEnvironment(const std::string& checkpoint) {
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
    resume_changes_.push_back(row);
  }
  if (!options_.resume_override) {
    return Status::InvalidArgument("refusing to resume from " + checkpoint +
                                   ": the BLAS library the run used has changed:" + listed +
                                   "\n(--resume-override resumes anyway and marks every later step record)");
  }
  resume_override_active_ = true;
  return Status::Ok();
}

// Continues the step log right after the checkpoint's step: records a killed run wrote
// past it are cut off, so the file stays one valid log of one run. The checkpoint names
// the frame that ends with its step and the digest of every byte up to it, so damage
// anywhere before the cut is found before a single record is added. A checkpoint without
// that position (an older format) has the log scanned whole instead.
Status TrainingRun::OpenStepLogForResume() {
  const std::string path = (fs::path(args_.output_dir) / kStepLogFile).string();
  const int64_t step = state_.global_step;
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
      damage = StepLogWriter::OpenForAppend(path, end, saved_log_position_->xxh3_128, options_.step_log, &step_log_);
    }
    if (damage.ok()) return Status::Ok();
    if (!damage.IsCorruption()) return damage;
  }
  StepLogContents log;
  Status read = damage.ok() ? ReadStepLog(path, &log) : damage;
  if (!read.ok()) return CutDamagedStepLog(path, read);
  uint64_t keep = log.frame_ends.empty() ? 0 : log.frame_ends.front();  // the header frame
  if (step > 0) {
    const auto& r = log.records;
    size_t i = 0;
    while (i < r.size() && r[i].step != step) ++i;
    if (i == r.size()) {
      return CutDamagedStepLog(path, Status::Corruption(path + ": has no record of step " + std::to_string(step) +
                                                        ", the checkpoint's step"));
    }
    if (i + 1 < r.size() && log.record_frame_ends[i + 1] == log.record_frame_ends[i]) {
      return Status::Corruption(path + ": step " + std::to_string(step) +
                                " does not end a frame (the log was not flushed at the checkpoint)");
    }
    keep = log.record_frame_ends[i];
  }
  return StepLogWriter::OpenForAppend(path, keep, "", options_.step_log, &step_log_);
}

// The step log does not hold the history the checkpoint saw. Without --resume-override the
// resume is refused. With it, the log is cut after its last intact frame at or before the
// checkpoint, the cut is recorded in the "resume" record, and every later step is marked.
Status TrainingRun::CutDamagedStepLog(const std::string& path, const Status& damage) {
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
    if (log.records[i].step <= state_.global_step) continue;
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
  resume_override_active_ = true;
  return StepLogWriter::OpenForAppend(path, keep, "", options_.step_log, &step_log_);
}

}  // namespace lockstep
