// The run directory before training starts (run_directory.h), and the choice rank 0 makes
// there for the whole job (TrainingRun::PrepareRunDirectory).
#include "trainer/run_directory.h"

#include <cstdio>
#include <filesystem>

#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "formats/run_lock.h"
#include "formats/step_log.h"
#include "trainer/training_run.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

// What a fresh run writes at the top of output_dir besides checkpoints and the step log.
bool IsResultsFile(const std::string& name) {
  return name == kTrainResultsFile || name == kEvalResultsFile || name == kAllResultsFile || name == kTrainerStateFile;
}

}  // namespace

// Rank 0 locks the directory, removes a dead save's leftovers and chooses the checkpoint
// to resume (or prepares a fresh run); the other ranks take its choice from the store, so
// no two ranks can resume from different checkpoints.
Status TrainingRun::PrepareRunDirectory(std::string* checkpoint) {
  checkpoint->clear();
  Status st;
  if (job_.IsRankZero()) {
    st = LockRunDirectory(args_.output_dir, options_.resume_from.has_value(), &lock_);
    if (st.ok()) st = RemoveStagingLeftovers(args_.output_dir, &removed_leftovers_);
    if (st.ok())
      st = options_.resume_from ? resume_.ChooseCheckpoint(checkpoint, resume_.verify_mode())
                                : PrepareFreshRunDirectory(args_);
  }
  return job_.ShareRankZeroDecision("resume_checkpoint", st, checkpoint, "prepare " + args_.output_dir);
}

Status PrepareFreshRunDirectory(const TrainingArgs& args) {
  std::vector<fs::path> ours;
  std::string foreign;
  bool have_log = false, have_results = false;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(args.output_dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t step;
    if (ParseCheckpointDirName(name, &step)) {
      if (!IsLockstepCheckpoint(e.path().string()) && foreign.empty()) {
        foreign = e.path().string() + " is not a Lockstep checkpoint (no manifest.json with Lockstep's magic)";
      }
      ours.push_back(e.path());
    } else if (name == kStepLogFile) {
      json header;  // an empty log is one whose header write failed: nothing to lose
      if (fs::file_size(e.path(), ec) != 0 && !ReadStepLogHeader(e.path().string(), &header).ok() && foreign.empty()) {
        foreign = e.path().string() + " is not a Lockstep step log";
      }
      have_log = true;
      ours.push_back(e.path());
    } else if (IsResultsFile(name)) {
      have_results = true;
      ours.push_back(e.path());
    }
  }
  if (ec) return Status::IOError(args.output_dir + ": cannot list: " + ec.message());
  if (ours.empty()) return Status::Ok();
  if (!args.overwrite_output_dir) {
    return Status::InvalidArgument(args.output_dir + " already holds a run (" + ours.front().filename().string() +
                                   "); choose another output_dir, pass --overwrite_output_dir true, or --resume it");
  }
  if (foreign.empty() && have_results && !have_log) {
    foreign = args.output_dir + " holds results files but no Lockstep step log (another trainer's run)";
  }
  if (!foreign.empty()) {
    return Status::InvalidArgument("--overwrite_output_dir removes only Lockstep's own runs, and " + foreign +
                                   "; nothing was removed. Move it away or choose another output_dir");
  }
  for (const auto& p : ours) {
    int64_t step;
    const bool checkpoint = ParseCheckpointDirName(p.filename().string(), &step);
    LOCKSTEP_RETURN_IF_ERROR(checkpoint ? RemoveCheckpoint(p.string()) : RemoveTree(p.string()));
  }
  return Status::Ok();
}

Status LockRunDirectory(const std::string& output_dir, bool resume, std::unique_ptr<RunLock>* lock) {
  return RunLock::Acquire(output_dir, resume ? "lockstep train --resume" : "lockstep train", lock);
}

Status RemoveStagingLeftovers(const std::string& output_dir, std::vector<std::string>* removed) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(output_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!IsCheckpointLeftover(name)) continue;
    LOCKSTEP_RETURN_IF_ERROR(RemoveTree(e.path().string()));
    removed->push_back(name);
    std::fprintf(stderr, "note: removed %s, left by a save or delete that did not finish\n", e.path().c_str());
  }
  return ec ? Status::IOError(output_dir + ": cannot list: " + ec.message()) : Status::Ok();
}

}  // namespace lockstep
