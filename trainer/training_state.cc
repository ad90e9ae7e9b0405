// What a checkpoint holds, in one list: each piece of the run's state, its file, and how it
// saves and restores itself. SaveCheckpointNow writes the list; Resume loads it, in this
// order. Loading training_args.json first refuses a changed run before anything is touched.
#include <cstdio>
#include <filesystem>

#include "formats/step_record.h"
#include "settings/location_settings.h"
#include "settings/resume_check.h"
#include "trainer/torch_bridge.h"
#include "trainer/training_run.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

// True when `fault` is the one being injected; says so loudly, once per skipped restore.
bool Injected(ResumeFault injected, ResumeFault fault) {
  if (injected != fault) return false;
  std::fprintf(stderr, "warning: FAULT INJECTION (testing only): not restoring %s on resume\n", ResumeFaultName(fault));
  return true;
}

}  // namespace

std::vector<StateFile> TrainingRun::StateFiles() {
  const ResumeFault fault = options_.faults.resume;
  std::vector<StateFile> files;
  files.push_back(JsonStateFile(
      kTrainingArgsJsonFile, [this] { return TrainingArgsToJson(args_); },
      [this](const json& j, const std::string& path) { return CheckSavedSettings(j, path); }));
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
  StateFile optimizer = OptimizerStateFile(optimizer_.get(), device_);
  optimizer.load = [fault, load = optimizer.load](const std::string& path, const WrittenFile* unverified) {
    return Injected(fault, ResumeFault::kOptimizer) ? Status::Ok() : load(path, unverified);
  };
  files.push_back(optimizer);
  files.push_back(JsonStateFile(
      kSchedulerStateFile, [this] { return scheduler_.ToJson(); },
      [this, fault](const json& j, const std::string& path) {
        LOCKSTEP_RETURN_IF_ERROR(scheduler_.FromJson(j, path));
        if (Injected(fault, ResumeFault::kScheduler)) scheduler_.Restart();
        return Status::Ok();
      }));
  files.push_back(JsonStateFile(
      kLoopStateFile,
      [this] {
        return LoopState{losses_, data_.digest, step_log_->position()}.ToJson();
      },
      [this, fault](const json& j, const std::string& path) {
        LoopState saved;
        LOCKSTEP_RETURN_IF_ERROR(LoopState::FromJson(j, path, &saved));
        losses_ = saved.losses;
        if (Injected(fault, ResumeFault::kLossSums)) losses_.Restart(state_.global_step);
        saved_log_position_ = saved.step_log;
        return Status::Ok();
      }));
  files.push_back(JsonStateFile(
      kSamplerStateFile,
      [this] {
        const int64_t done = state_.global_step % plan_.updates_per_epoch;  // 0 at an epoch's end: all of it
        return sampler_->ToJson(done == 0 ? plan_.updates_per_epoch : done);
      },
      [this, fault](const json& j, const std::string& path) {
        if (Injected(fault, ResumeFault::kSamplerPosition)) return Status::Ok();  // epoch 0, position 0
        return sampler_->FromJson(j, path, plan_.updates_per_epoch, &resume_at_);
      }));
  files.push_back(JsonStateFile(
      job_.RngFileName(),  // each rank's own: rng_state_<rank>.json in a job, as HF's rng_state_{rank}.pth
      [this] {
        GeneratorStates rng = RngStates(/*full=*/true);
        rng.erase(step_key::kSamplerGenerator);  // kept, with its position, in sampler.json
        return GeneratorStatesJson(rng);
      },
      [this](const json& j, const std::string& path) { return LoadRng(j, path); }));
  // A resume overridden across world sizes finds no file of this rank's name: it takes the
  // nearest one there is (HF warns and goes on without). The records are marked anyway.
  files.back().load = [this, load = files.back().load](const std::string& path, const WrittenFile* unverified) {
    if (fs::exists(path) || !resume_override_active_) return load(path, unverified);
    const fs::path dir = fs::path(path).parent_path();
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

// training_args.json: a resume may change only the settings that do not decide the run.
Status TrainingRun::CheckSavedSettings(const json& saved, const std::string& path) {
  const std::string checkpoint = fs::path(path).parent_path().string();
  std::vector<SettingChange> changes;
  LOCKSTEP_RETURN_IF_ERROR(DiffResumeSettings(saved, checkpoint, args_, &changes));
  LOCKSTEP_RETURN_IF_ERROR(CheckResumeSettings(changes, checkpoint, options_.resume_override));
  for (const auto& c : changes) {
    resume_override_active_ |= !c.safe;
    if (IsOutputLocationSetting(c.knob)) continue;
    resume_changes_.push_back({{"setting", c.knob}, {"checkpoint", c.checkpoint}, {"now", c.now}, {"safe", c.safe}});
  }
  if (resume_override_active_ && options_.warn_on_override) {
    std::fprintf(stderr,
                 "warning: resuming %s with changed run-deciding settings (--resume-override); "
                 "this is a different run and its records are marked resume_override\n",
                 checkpoint.c_str());
  }
  return Status::Ok();
}

// rng_state.json: the global generators, restored last so nothing after them draws.
Status TrainingRun::LoadRng(const json& j, const std::string& path) {
  std::vector<uint8_t> cpu_state;
  LOCKSTEP_RETURN_IF_ERROR(DecodeFullState(j.at("cpu"), path + ": cpu", &cpu_state));
  if (Injected(options_.faults.resume, ResumeFault::kRng)) return Status::Ok();
  SetGeneratorStateBytes(DefaultGenerator(torch::kCPU), cpu_state);
  if (device_.is_cuda()) {
    std::vector<uint8_t> cuda_state;
    if (!j.contains("cuda")) {
      // A CPU run replayed on a GPU (lockstep replay --device cuda) starts the CUDA generator fresh.
      if (options_.hooks.replay_step_begin) return Status::Ok();
      return Status::Corruption(path + ": no CUDA generator state for a CUDA run");
    }
    LOCKSTEP_RETURN_IF_ERROR(DecodeFullState(j.at("cuda"), path + ": cuda", &cuda_state));
    SetGeneratorStateBytes(DefaultGenerator(torch::kCUDA), cuda_state);
  }
  return Status::Ok();
}

}  // namespace lockstep
