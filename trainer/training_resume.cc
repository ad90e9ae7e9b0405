// Resuming a run: restore every piece of state that decides the rest of the run, and
// continue its step log where the checkpoint left it. Every restore is O(1) in the run's
// position: nothing is replayed, no skipped batch is drawn.
#include <cstdio>
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
namespace {

json ChangesJson(const std::vector<SettingChange>& changes) {
  json out = json::array();
  for (const auto& c : changes) {
    if (c.knob == "output_dir" || c.knob == "overwrite_output_dir") continue;
    out.push_back({{"setting", c.knob}, {"checkpoint", c.checkpoint}, {"now", c.now}, {"safe", c.safe}});
  }
  return out;
}

// True when `fault` is the one being injected; says so loudly, once per skipped restore.
bool Injected(ResumeFault injected, ResumeFault fault) {
  if (injected != fault) return false;
  std::fprintf(stderr, "warning: FAULT INJECTION (testing only): not restoring %s on resume\n",
               ResumeFaultName(fault));
  return true;
}

}  // namespace

// Restores everything that decides the rest of the run from `checkpoint`: weights, AdamW
// state, scheduler, trainer state, loss sums, sampler position and every RNG. The data
// position costs one permutation draw from the saved generator state, however far into
// the epoch; then the step log is cut after the checkpoint's step and continued.
Status TrainingRun::Resume(const std::string& checkpoint) {
  const fs::path dir(checkpoint);
  json saved_args, trainer_state, loop, sampler, rng, scheduler;
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "training_args.json").string(), &saved_args));
  std::vector<SettingChange> changes;
  LOCKSTEP_RETURN_IF_ERROR(DiffResumeSettings(saved_args, checkpoint, args_, &changes));
  LOCKSTEP_RETURN_IF_ERROR(CheckResumeSettings(changes, checkpoint, options_.resume_override));
  for (const auto& c : changes) resume_override_active_ |= !c.safe;
  if (resume_override_active_) {
    std::fprintf(stderr, "warning: resuming %s with changed run-deciding settings (--resume-override); "
                 "this is a different run and its records are marked resume_override\n", checkpoint.c_str());
  }
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "trainer_state.json").string(), &trainer_state));
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "loop_state.json").string(), &loop));
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "sampler.json").string(), &sampler));
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "rng_state.json").string(), &rng));
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((dir / "scheduler.json").string(), &scheduler));
  LOCKSTEP_RETURN_IF_ERROR(LoadModelWeights(checkpoint, model_.get()));
  const ResumeFault fault = options_.fault;
  if (!Injected(fault, ResumeFault::kOptimizer)) {
    LOCKSTEP_RETURN_IF_ERROR(LoadOptimizerState(checkpoint, device_, optimizer_.get()));
  }

  TrainerState restored;
  LOCKSTEP_RETURN_IF_ERROR(TrainerState::FromJson(trainer_state, checkpoint + "/trainer_state.json", &restored));
  // Frequencies may have changed (safe settings): keep the ones this run resolved.
  restored.max_steps = state_.max_steps;
  restored.logging_steps = state_.logging_steps;
  restored.eval_steps = state_.eval_steps;
  restored.save_steps = state_.save_steps;
  state_ = restored;
  try {
    scheduler_step_ = scheduler.at("last_epoch").get<int64_t>();
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
    if (!Injected(fault, ResumeFault::kRng)) {
      SetGeneratorStateBytes(DefaultGenerator(torch::kCPU), cpu_state);
      if (device_.is_cuda()) {
        std::vector<uint8_t> cuda_state;
        if (!rng.contains("cuda") || !Base64Decode(rng["cuda"].at("base64").get<std::string>(), &cuda_state)) {
          return Status::Corruption(checkpoint + "/rng_state.json: no CUDA generator state for a CUDA run");
        }
        SetGeneratorStateBytes(DefaultGenerator(torch::kCUDA), cuda_state);
      }
    }
  } catch (const json::exception& e) {
    return Status::Corruption(checkpoint + ": loop, scheduler, sampler or RNG state is malformed: " + e.what());
  } catch (const std::exception& e) {  // std::stoul
    return Status::Corruption(checkpoint + "/loop_state.json: tr_loss_bits is not a hex number: " + e.what());
  }
  if (Injected(fault, ResumeFault::kSamplerPosition)) {
    start_epoch_ = start_update_ = 0;
    sampler_restored_ = false;
  }
  if (Injected(fault, ResumeFault::kScheduler)) scheduler_step_ = 0;
  if (Injected(fault, ResumeFault::kLossSums)) {
    tr_loss_ = 0.0f;
    total_loss_ = 0.0;
    globalstep_last_logged_ = state_.global_step;
  }
  resumed_from_ = checkpoint;

  LOCKSTEP_RETURN_IF_ERROR(OpenStepLogForResume(loop));
  json event = {{"after_step", state_.global_step},
                {"checkpoint", fs::path(checkpoint).filename().string()},
                {"changed_settings", ChangesJson(changes)},
                {"resume_override", resume_override_active_}};
  if (!skipped_checkpoints_.empty()) event["skipped_checkpoints"] = skipped_checkpoints_;
  if (fault != ResumeFault::kNone) event["fault_injected"] = ResumeFaultName(fault);
  LOCKSTEP_RETURN_IF_ERROR(step_log_->AppendEvent("resume", event));
  Emit("resumed", state_.global_step);
  return Status::Ok();
}

// Continues the step log right after the checkpoint's step: records a killed run wrote
// past it are cut off, so the file stays one valid log of one run. The checkpoint names
// the frame that ends with its step, so only that frame is read; a log without that
// frame (an older checkpoint, or a copied log) is scanned whole instead.
Status TrainingRun::OpenStepLogForResume(const json& loop_state) {
  const std::string path = (fs::path(args_.output_dir) / kStepLogFile).string();
  const int64_t step = state_.global_step;
  if (step > 0 && loop_state.value("step_log_bytes", json()).is_number_unsigned() &&
      loop_state.value("step_log_last_frame", json()).is_number_unsigned()) {
    const uint64_t end = loop_state["step_log_bytes"].get<uint64_t>();
    const uint64_t begin = loop_state["step_log_last_frame"].get<uint64_t>();
    std::vector<json> frame;
    if (ReadStepLogFrame(path, begin, end, &frame).ok() && !frame.empty() &&
        frame.back().value("kind", "") == "step" && frame.back().value("step", int64_t{-1}) == step) {
      return StepLogWriter::OpenForAppend(path, end, options_.step_log, &step_log_);
    }
  }
  StepLogContents log;
  LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(path, &log));
  uint64_t keep = log.frame_ends.empty() ? 0 : log.frame_ends.front();  // the header frame
  if (step > 0) {
    const auto& r = log.records;
    size_t i = 0;
    while (i < r.size() && r[i].value("step", int64_t{0}) != step) ++i;
    if (i == r.size()) {
      return Status::Corruption(path + ": has no record of step " + std::to_string(step) +
                                ", the checkpoint's step");
    }
    if (i + 1 < r.size() && log.record_frame_ends[i + 1] == log.record_frame_ends[i]) {
      return Status::Corruption(path + ": step " + std::to_string(step) +
                                " does not end a frame (the log was not flushed at the checkpoint)");
    }
    keep = log.record_frame_ends[i];
  }
  return StepLogWriter::OpenForAppend(path, keep, options_.step_log, &step_log_);
}

}  // namespace lockstep
