// What a checkpoint holds, in one list: each piece of the run's state, its file, and how it
// saves and restores itself. SaveCheckpointNow writes the list; Resume loads it, in this
// order. Loading training_args.json first refuses a changed run before anything is touched.
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "formats/base64.h"
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

Status DecodeState(const json& state, const std::string& path, const char* what, std::vector<uint8_t>* out) {
  if (!Base64Decode(state.at("base64").get<std::string>(), out)) {
    return Status::Corruption(path + ": the " + std::string(what) + " generator state is not valid base64");
  }
  return Status::Ok();
}

}  // namespace

std::vector<StateFile> TrainingRun::StateFiles() {
  const ResumeFault fault = options_.faults.resume;
  std::vector<StateFile> files;
  files.push_back(JsonStateFile(
      "training_args.json", [this] { return TrainingArgsToJson(args_); },
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
  optimizer.load = [fault, load = optimizer.load](const std::string& path) {
    return Injected(fault, ResumeFault::kOptimizer) ? Status::Ok() : load(path);
  };
  files.push_back(optimizer);
  files.push_back(JsonStateFile(
      "scheduler.json", [this] { return SchedulerJson(); },
      [this](const json& j, const std::string&) { return LoadScheduler(j); }));
  files.push_back(JsonStateFile(
      "loop_state.json", [this] { return LoopJson(); },
      [this](const json& j, const std::string& path) { return LoadLoop(j, path); }));
  files.push_back(JsonStateFile(
      "sampler.json",
      [this] {
        const int64_t done = state_.global_step % plan_.updates_per_epoch;  // 0 at an epoch's end: all of it
        return sampler_->ToJson(done == 0 ? plan_.updates_per_epoch : done);
      },
      [this, fault](const json& j, const std::string& path) {
        if (Injected(fault, ResumeFault::kSamplerPosition)) return Status::Ok();  // epoch 0, position 0
        return sampler_->FromJson(j, path, plan_.updates_per_epoch, &resume_at_);
      }));
  files.push_back(JsonStateFile(
      RngFileName(),  // each rank's own: rng_state_<rank>.json in a job, as HF's rng_state_{rank}.pth
      [this] {
        json rng = RngJson(/*full=*/true);
        rng.erase("sampler");  // kept, with its position, in sampler.json
        return rng;
      },
      [this](const json& j, const std::string& path) { return LoadRng(j, path); }));
  // A resume overridden across world sizes finds no file of this rank's name: it takes the
  // nearest one there is (HF warns and goes on without). The records are marked anyway.
  files.back().load = [this, load = files.back().load](const std::string& path) {
    if (fs::exists(path) || !resume_override_active_) return load(path);
    const fs::path dir = fs::path(path).parent_path();
    for (const std::string& other : {"rng_state_" + std::to_string(rank_) + ".json", std::string("rng_state.json"),
                                     std::string("rng_state_0.json")}) {
      if (!fs::exists(dir / other)) continue;
      std::fprintf(stderr, "warning: %s has no %s (another world size); restoring the generators from %s\n",
                   dir.c_str(), fs::path(path).filename().c_str(), other.c_str());
      return load((dir / other).string());
    }
    return load(path);
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

// scheduler.json: the scheduler's own step count (LambdaLR's last_epoch), restored rather
// than derived from global_step.
json TrainingRun::SchedulerJson() const {
  return {{"type", schedule_.spec().type},
          {"kwargs", schedule_.spec().kwargs},
          {"base_lr", schedule_.spec().base_lr},
          {"warmup_steps", schedule_.spec().warmup_steps},
          {"total_steps", schedule_.spec().total_steps},
          {"last_epoch", scheduler_step_},
          {"last_lr", schedule_.LrAt(scheduler_step_)}};
}

Status TrainingRun::LoadScheduler(const json& j) {
  scheduler_step_ = Injected(options_.faults.resume, ResumeFault::kScheduler) ? 0 : j.at("last_epoch").get<int64_t>();
  return Status::Ok();
}

// loop_state.json: HF's loss bookkeeping, and where the checkpoint's step ends in the step
// log with the digest of the log up to there (resume proves the log before continuing it).
json TrainingRun::LoopJson() const {
  return {{"tr_loss", tr_loss_},
          {"tr_loss_bits", FloatBits(tr_loss_)},
          {"total_loss", total_loss_},
          {"globalstep_last_logged", globalstep_last_logged_},
          {"dataset_xxh3_128", data_.digest},
          {"step_log_bytes", step_log_->bytes_written()},
          {"step_log_last_frame", step_log_->last_frame_start()},
          {"step_log_xxh3_128", step_log_->digest()}};
}

Status TrainingRun::LoadLoop(const json& j, const std::string& path) {
  const std::string bits_hex = j.at("tr_loss_bits").get<std::string>();
  char* end = nullptr;
  const unsigned long bits = std::strtoul(bits_hex.c_str(), &end, 16);
  if (bits_hex.empty() || *end != '\0' || bits > 0xffffffffUL) {
    return Status::Corruption(path + ": tr_loss_bits '" + bits_hex + "' is not a 32-bit hex number");
  }
  const uint32_t bits32 = static_cast<uint32_t>(bits);
  std::memcpy(&tr_loss_, &bits32, sizeof(bits32));
  total_loss_ = j.at("total_loss").get<double>();
  globalstep_last_logged_ = j.at("globalstep_last_logged").get<int64_t>();
  if (Injected(options_.faults.resume, ResumeFault::kLossSums)) {
    tr_loss_ = 0.0f;
    total_loss_ = 0.0;
    globalstep_last_logged_ = state_.global_step;
  }
  saved_log_position_ = j;
  return Status::Ok();
}

// rng_state.json: the global generators, restored last so nothing after them draws.
Status TrainingRun::LoadRng(const json& j, const std::string& path) {
  std::vector<uint8_t> cpu_state;
  LOCKSTEP_RETURN_IF_ERROR(DecodeState(j.at("cpu"), path, "CPU", &cpu_state));
  if (Injected(options_.faults.resume, ResumeFault::kRng)) return Status::Ok();
  SetGeneratorStateBytes(DefaultGenerator(torch::kCPU), cpu_state);
  if (device_.is_cuda()) {
    std::vector<uint8_t> cuda_state;
    if (!j.contains("cuda")) {
      // A CPU run replayed on a GPU (lockstep replay --device cuda) starts the CUDA generator fresh.
      if (options_.hooks.replay_step_begin) return Status::Ok();
      return Status::Corruption(path + ": no CUDA generator state for a CUDA run");
    }
    LOCKSTEP_RETURN_IF_ERROR(DecodeState(j.at("cuda"), path, "CUDA", &cuda_state));
    SetGeneratorStateBytes(DefaultGenerator(torch::kCUDA), cuda_state);
  }
  return Status::Ok();
}

}  // namespace lockstep
