// What a checkpoint holds, in one list: each piece of the run's state, its file, and how it
// saves and restores itself. SaveCheckpointNow writes the list; Resume loads it, in this
// order. Loading training_args.json first refuses a changed run before anything is touched.
// rng_state.json comes last, so nothing restored after it draws from the generators.
#include <cstdio>
#include <filesystem>

#include "formats/json_file.h"
#include "formats/step_record.h"
#include "trainer/torch_bridge.h"
#include "trainer/training_run.h"

namespace fs = std::filesystem;

namespace lockstep {

std::vector<StateFile> TrainingRun::StateFiles() {
  std::vector<StateFile> files;
  files.push_back(JsonStateFile(
      kTrainingArgsJsonFile, [this] { return TrainingArgsToJson(args_); },
      [this](const json& j, const std::string& path) { return resume_.CheckSavedSettings(j, path); }));
  files.push_back(JsonStateFile(
      kTrainerStateFile, [this] { return state_.ToJson(); },
      [this](const json& j, const std::string& path) {
        TrainerState restored;
        LOCKSTEP_RETURN_IF_ERROR(TrainerState::FromJson(j, path, &restored));
        // Frequencies may have changed (safe settings): keep the ones this run resolved.
        restored.max_steps = state_.max_steps;
        restored.logging_steps = state_.logging_steps;
        restored.eval_steps = state_.eval_steps;
        restored.save_steps = state_.save_steps;
        state_ = restored;
        return Status::Ok();
      }));
  files.push_back(ModelStateFile(model_.get()));
  files.push_back(OptimizerStateFile(optimizer_.get(), device_));
  files.push_back(JsonStateFile(
      kSchedulerStateFile, [this] { return scheduler_.ToJson(); },
      [this](const json& j, const std::string& path) { return scheduler_.FromJson(j, path); }));
  files.push_back(JsonStateFile(
      kLoopStateFile,
      [this] {
        return LoopState{losses_, data_.digest, step_log_->position()}.ToJson();
      },
      [this](const json& j, const std::string& path) {
        LoopState saved;
        LOCKSTEP_RETURN_IF_ERROR(LoopState::FromJson(j, path, &saved));
        losses_ = saved.losses;
        resume_.SetSavedLogPosition(saved.step_log);
        return Status::Ok();
      }));
  files.push_back(JsonStateFile(
      kSamplerStateFile,
      [this] {
        const int64_t done = state_.global_step % plan_.updates_per_epoch;  // 0 at an epoch's end: all of it
        return sampler_->ToJson(done == 0 ? plan_.updates_per_epoch : done);
      },
      [this](const json& j, const std::string& path) {
        return sampler_->FromJson(j, path, plan_.updates_per_epoch, &resume_at_);
      }));
  files.push_back(JsonStateFile(
      job_.RngFileName(),  // each rank's own: rng_state_<rank>.json in a job, as HF's rng_state_{rank}.pth
      [this] { return generators_->ToJson(); },
      [this](const json& j, const std::string& path) {
        // A CPU run replayed on a GPU (lockstep replay --device cuda) starts the CUDA generator fresh.
        return generators_->FromJson(j, path, /*cuda_optional=*/static_cast<bool>(options_.hooks.replay_step_begin));
      }));
  // At another world size, rank r's file of the saved job may not exist. A world_invariant
  // run's ranks hold alike generators (its units draw from their own), so every rank
  // restores rank 0's, once rank 0 has found the saved ranks' files alike. An overridden
  // resume takes the nearest file there is (HF warns and goes on without); its records are
  // marked anyway.
  files.back().load = [this, load = files.back().load](const std::string& path, const WrittenFile* unverified) {
    const int64_t saved_world = resume_.saved_world_size();
    const fs::path dir = fs::path(path).parent_path();
    if (saved_world > 0 && args_.world_invariant) {
      const std::string first = (dir / RngStateFileName(0, saved_world, kRngStateJsonExt)).string();
      if (IsRankZero()) LOCKSTEP_RETURN_IF_ERROR(SavedRanksAlike(dir.string(), saved_world));
      return load(first, nullptr);
    }
    if (fs::exists(path) || !resume_.override_active()) return load(path, unverified);
    for (const std::string& other :
         {RngStateFileName(job_.rank(), 2, kRngStateJsonExt), RngStateFileName(0, 1, kRngStateJsonExt),
          RngStateFileName(0, 2, kRngStateJsonExt)}) {
      if (!fs::exists(dir / other)) continue;
      std::fprintf(stderr, "warning: %s has no %s (another world size); restoring the generators from %s\n",
                   dir.c_str(), fs::path(path).filename().c_str(), other.c_str());
      return load((dir / other).string(), nullptr);
    }
    return load(path, unverified);
  };
  return files;
}

// A world_invariant job's ranks save alike generator files; a checkpoint whose files differ
// was not written by one (or was edited), and no rank may stand in for another: Corruption.
Status TrainingRun::SavedRanksAlike(const std::string& dir, int64_t saved_world) const {
  const std::string first = RngStateFileName(0, saved_world, kRngStateJsonExt);
  json rank0;
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((fs::path(dir) / first).string(), &rank0));
  for (int64_t r = 1; r < saved_world; ++r) {
    const std::string name = RngStateFileName(r, saved_world, kRngStateJsonExt);
    json theirs;
    LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((fs::path(dir) / name).string(), &theirs));
    if (theirs != rank0) {
      return Status::Corruption(dir + ": " + name + " differs from " + first +
                                ": the ranks' generators were not alike, so no rank's file stands in for another "
                                "at another world size");
    }
  }
  return Status::Ok();
}

Status TrainingRun::Resume(const std::string& checkpoint) {
  LOCKSTEP_RETURN_IF_ERROR(resume_.Load(checkpoint, [this] {
    std::vector<StateFile> files = StateFiles();
    observers_.RestoresState(&files);  // a testing fault spoils one piece here
    return files;
  }));
  if (!IsRankZero()) return Status::Ok();  // rank 0 continues the job's step log
  LOCKSTEP_RETURN_IF_ERROR(resume_.ContinueStepLog(state_.global_step, &step_log_));
  json event = resume_.Event(state_.global_step, removed_leftovers_);
  if (options_.faults.resume != ResumeFault::kNone) {
    event[event_key::kFaultInjected] = ResumeFaultName(options_.faults.resume);
  }
  LOCKSTEP_RETURN_IF_ERROR(step_log_->AppendEvent(event_key::kResume, event));
  Emit("resumed", state_.global_step);
  return Status::Ok();
}

}  // namespace lockstep
