// The run directory: its writer lock, the leftovers of dead saves, and what a fresh run
// may replace. Everything here runs under the lock, before any training state exists.
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
    st = LockOutputDir();
    if (st.ok()) st = RemoveStagingLeftovers();
    if (st.ok())
      st = options_.resume_from ? ChooseResumeCheckpoint(checkpoint, ResumeVerifyMode()) : PrepareOutputDir();
  }
  return job_.ShareRankZeroDecision("resume_checkpoint", st, checkpoint, "prepare " + args_.output_dir);
}

// The entries of output_dir a fresh run would overwrite, or a reason to refuse. With
// overwrite_output_dir they are removed, but only when every one is Lockstep's own: HF's
// flag of the same name never deletes, so a foreign checkpoint (no Lockstep manifest), a
// foreign step log, or results without a Lockstep step log beside them make it refuse.
Status TrainingRun::PrepareOutputDir() {
  const TrainingArgs& args = args_;
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

// Takes output_dir's writer lock for the whole run, before anything in it is touched.
Status TrainingRun::LockOutputDir() {
  const char* command = options_.resume_from ? "lockstep train --resume" : "lockstep train";
  return RunLock::Acquire(args_.output_dir, command, &lock_);
}

// Staging and deleting directories are only ever left by a save or delete that died: under the lock no other
// writer can own one, so they are removed, and reported.
Status TrainingRun::RemoveStagingLeftovers() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(args_.output_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!IsCheckpointLeftover(name)) continue;
    LOCKSTEP_RETURN_IF_ERROR(RemoveTree(e.path().string()));
    removed_leftovers_.push_back(name);
    std::fprintf(stderr, "note: removed %s, left by a save or delete that did not finish\n", e.path().c_str());
  }
  return ec ? Status::IOError(args_.output_dir + ": cannot list: " + ec.message()) : Status::Ok();
}

}  // namespace lockstep
