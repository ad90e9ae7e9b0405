// HF's best model: the metric that decides it (_determine_best_metric), the checkpoint it
// names (best_model_checkpoint), and save_total_limit 1's end, which keeps that checkpoint
// alone. Internal to trainer/.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "settings/trainer_state.h"
#include "settings/training_args.h"

namespace lockstep {

// Whether `metrics` (of state->global_step) sets a new best; when it does, the state's
// best_metric and best_global_step say so.
bool UpdateBestMetric(const TrainingArgs& args, const nlohmann::json& metrics, TrainerState* state);

// best_model_checkpoint: the best step's directory under `output_dir`, once that
// checkpoint exists (`step` is the one being saved).
void NoteBestCheckpoint(const std::string& output_dir, int64_t step, TrainerState* state);

// HF's end of training under save_total_limit 1 with a best checkpoint: every other
// checkpoint is deleted, the newest included. Nothing otherwise.
Status KeepOnlyTheBestCheckpoint(const TrainingArgs& args, const TrainerState& state);

}  // namespace lockstep
