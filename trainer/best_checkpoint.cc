// HF's best model (best_checkpoint.h).
#include "trainer/best_checkpoint.h"

#include <filesystem>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/rotation.h"

namespace fs = std::filesystem;

namespace lockstep {

using nlohmann::json;

bool UpdateBestMetric(const TrainingArgs& args, const json& metrics, TrainerState* state) {
  const std::string key = BestMetricKey(args);
  if (key.empty() || !metrics.contains(key)) return false;
  const double value = metrics[key].get<double>();
  const bool better =
      !state->best_metric || (GreaterIsBetter(args) ? value > *state->best_metric : value < *state->best_metric);
  if (!better) return false;
  state->best_metric = value;
  state->best_global_step = state->global_step;
  return true;
}

void NoteBestCheckpoint(const std::string& output_dir, int64_t step, TrainerState* state) {
  if (!state->best_global_step) return;
  const std::string best_dir = (fs::path(output_dir) / CheckpointDirName(*state->best_global_step)).string();
  if (*state->best_global_step == step || fs::exists(best_dir)) state->best_model_checkpoint = best_dir;
}

Status KeepOnlyTheBestCheckpoint(const TrainingArgs& args, const TrainerState& state) {
  if (args.save_total_limit.value_or(0) != 1 || !state.best_model_checkpoint) return Status::Ok();
  std::vector<CheckpointDir> dirs;
  LOCKSTEP_RETURN_IF_ERROR(ListCheckpointDirs(args.output_dir, &dirs));
  for (const auto& d : dirs) {
    if (fs::path(d.path).filename() == fs::path(*state.best_model_checkpoint).filename()) continue;
    LOCKSTEP_RETURN_IF_ERROR(RemoveCheckpoint(d.path));
  }
  return Status::Ok();
}

}  // namespace lockstep
