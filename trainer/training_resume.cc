// Resuming a run: restore every piece of state that decides the rest of the run, and
// continue its step log where the checkpoint left it.
#include <cstring>
#include <filesystem>

#include "formats/base64.h"
#include "formats/json_file.h"
#include "trainer/checkpoint_io.h"
#include "trainer/resume_check.h"
#include "trainer/torch_bridge.h"
#include "trainer/training_run.h"

namespace fs = std::filesystem;

namespace lockstep {

// Restores everything that decides the rest of the run from `checkpoint`: weights, AdamW
// state, trainer state, loss sums, sampler position and every RNG. The data position costs
// one permutation draw from the saved generator state, however far into the epoch.
Status TrainingRun::Resume(const std::string& checkpoint) {
  const fs::path dir(checkpoint);
  json saved_args, trainer_state, loop, sampler, rng;
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "training_args.json").string(), &saved_args));
  LOCKSTEP_RETURN_IF_ERROR(CheckResumeSettings(saved_args, checkpoint, args_));
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "trainer_state.json").string(), &trainer_state));
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "loop_state.json").string(), &loop));
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "sampler.json").string(), &sampler));
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "rng_state.json").string(), &rng));
  LOCKSTEP_RETURN_IF_ERROR(LoadModelWeights(checkpoint, model_.get()));
  LOCKSTEP_RETURN_IF_ERROR(LoadOptimizerState(checkpoint, device_, optimizer_.get()));

  TrainerState restored;
  LOCKSTEP_RETURN_IF_ERROR(TrainerState::FromJson(trainer_state, checkpoint + "/trainer_state.json", &restored));
  // Frequencies may have changed (safe settings): keep the ones this run resolved.
  restored.max_steps = state_.max_steps;
  restored.logging_steps = state_.logging_steps;
  restored.eval_steps = state_.eval_steps;
  restored.save_steps = state_.save_steps;
  state_ = restored;
  try {
    const uint32_t bits = static_cast<uint32_t>(std::stoul(loop.at("tr_loss_bits").get<std::string>(), nullptr, 16));
    std::memcpy(&tr_loss_, &bits, sizeof(bits));
    total_loss_ = loop.at("total_loss").get<double>();
    globalstep_last_logged_ = loop.at("globalstep_last_logged").get<int64_t>();
    const int64_t epoch = sampler.at("epoch").get<int64_t>();
    const int64_t done = sampler.at("updates_done_in_epoch").get<int64_t>();
    std::vector<uint8_t> sampler_state, cpu_state;
    if (!Base64Decode(sampler.at("generator_state_at_epoch_start").at("base64").get<std::string>(), &sampler_state) ||
        !Base64Decode(rng.at("cpu").at("base64").get<std::string>(), &cpu_state)) {
      return Status::Corruption(checkpoint + ": a saved generator state is not valid base64");
    }
    if (done < plan_.updates_per_epoch) {
      sampler_->RestoreEpoch(epoch, sampler_state);
      sampler_restored_ = true;
      start_epoch_ = epoch;
      start_update_ = done;
    } else {
      start_epoch_ = epoch + 1;  // the checkpoint closed its epoch: the next one begins afresh
    }
    SetGeneratorStateBytes(DefaultGenerator(torch::kCPU), cpu_state);
    if (device_.is_cuda()) {
      std::vector<uint8_t> cuda_state;
      if (!rng.contains("cuda") || !Base64Decode(rng["cuda"].at("base64").get<std::string>(), &cuda_state)) {
        return Status::Corruption(checkpoint + "/rng_state.json: no CUDA generator state for a CUDA run");
      }
      SetGeneratorStateBytes(DefaultGenerator(torch::kCUDA), cuda_state);
    }
  } catch (const json::exception& e) {
    return Status::Corruption(checkpoint + ": loop, sampler or RNG state is malformed: " + e.what());
  }
  resumed_from_ = checkpoint;
  return Status::Ok();
}

// Continues the step log right after the checkpoint's step: records a killed run wrote
// past it are cut off, so the file stays one valid log of one run.
Status TrainingRun::OpenStepLogForResume() {
  const std::string path = (fs::path(args_.output_dir) / kStepLogFile).string();
  StepLogContents log;
  LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(path, &log));
  uint64_t keep = log.frame_ends.empty() ? 0 : log.frame_ends.front();  // the header frame
  if (state_.global_step > 0) {
    const auto& r = log.records;
    size_t i = 0;
    while (i < r.size() && r[i].value("step", int64_t{0}) != state_.global_step) ++i;
    if (i == r.size()) {
      return Status::Corruption(path + ": has no record of step " + std::to_string(state_.global_step) +
                                ", the checkpoint's step");
    }
    if (i + 1 < r.size() && log.record_frame_ends[i + 1] == log.record_frame_ends[i]) {
      return Status::Corruption(path + ": step " + std::to_string(state_.global_step) +
                                " does not end a frame (the log was not flushed at the checkpoint)");
    }
    keep = log.record_frame_ends[i];
  }
  return StepLogWriter::OpenForAppend(path, keep, options_.step_log, &step_log_);
}

}  // namespace lockstep
