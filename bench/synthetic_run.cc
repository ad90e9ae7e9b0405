#include "bench/synthetic_run.h"

#include <cmath>
#include <memory>

#include "formats/checkpoint.h"
#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/step_log.h"

namespace lockstep {

float SyntheticLoss(int64_t step) {
  const double s = static_cast<double>(step);
  return static_cast<float>(2.0 * std::exp(-s / 400.0) + 0.3 + 0.05 * std::sin(s * 0.7));
}

Status WriteSyntheticRun(const std::string& dir, const SyntheticRun& run) {
  LOCKSTEP_RETURN_IF_ERROR(MakeDirs(dir));
  const int64_t per_epoch = std::max<int64_t>(1, run.dataset_size / 8);
  nlohmann::json header = {
      {"dataset",
       {{"name", "synthetic"},
        {"train_samples", run.claimed_dataset_size > 0 ? run.claimed_dataset_size : run.dataset_size}}},
      {"plan", {{"updates_per_epoch", per_epoch}, {"max_steps", run.steps}}},
      {"training_args", {{"seed", 42}, {"learning_rate", 1e-3}}},
      {"device", "cpu"},
      {"num_threads", 1},
      {"torch_version", "synthetic"}};
  if (!run.grad_norm_measured.empty()) header["grad_norm_measured"] = run.grad_norm_measured;
  std::unique_ptr<StepLogWriter> writer;
  LOCKSTEP_RETURN_IF_ERROR(StepLogWriter::Create(dir + "/" + kStepLogFile, header, StepLogOptions{1024, 1}, &writer));
  for (int64_t step = 1; step <= run.steps; ++step) {
    StepRecord r;
    r.step = step;
    std::vector<int64_t> ids;
    const int64_t first = ((step - 1 - (step == run.repeated_step ? 1 : 0)) % per_epoch) * 8;
    for (int64_t k = 0; k < 8; ++k) ids.push_back(first + (step == run.shuffled_step ? 7 - k : k));
    r.batches = {ids};
    r.loss = run.loss ? run.loss(step) : SyntheticLoss(step);
    r.lr = 1e-3 * (1.0 - static_cast<double>(step - 1) / static_cast<double>(run.steps));
    r.grad_norm = 1.0f + 0.5f * static_cast<float>(std::cos(static_cast<double>(step) * 0.3));
    r.epoch = static_cast<double>(step) / static_cast<double>(per_epoch);
    // What the trainer adds to every record, so reading one costs what reading a real one does
    // (less the full generator states a real log holds every 100 steps).
    r.sampler = SamplerPosition{(step - 1) / per_epoch, (step - 1) % per_epoch, first};
    const uint64_t seed = static_cast<uint64_t>(step);
    GeneratorState cpu;
    cpu.size = 5056;
    cpu.xxh3_128 = Xxh3Hex(&seed, sizeof(seed));
    r.rng = {{step_key::kCpu, cpu}};
    LOCKSTEP_RETURN_IF_ERROR(writer->Append(std::move(r)));
    if (step == run.resume_after) {
      LOCKSTEP_RETURN_IF_ERROR(writer->AppendEvent(
          event_key::kResume, {{event_key::kAfterStep, step}, {event_key::kCheckpoint, CheckpointDirName(step)}}));
    }
  }
  return writer->Close();
}

}  // namespace lockstep
