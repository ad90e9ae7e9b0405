// Saving and loading the trainer's checkpoints: checkpoint-<step>/ holds
//   model.h5          every parameter and buffer, one dataset each
//   optimizer.h5      exp_avg/<param>, exp_avg_sq/<param>, step/<param> (AdamW state)
//   trainer_state.json   HF's TrainerState
//   training_args.json   every knob (TrainingArgsToJson)
//   scheduler.json, sampler.json, rng_state.json, loop_state.json
//   manifest.json     written last (formats/checkpoint.h)
// Layout and field meanings: formats/doc/checkpoint_format.md.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "trainer/adamw.h"
#include "trainer/models.h"

namespace lockstep {

constexpr char kModelFile[] = "model.h5";
constexpr char kOptimizerFile[] = "optimizer.h5";

struct CheckpointPayload {
  Model* model = nullptr;
  AdamW* optimizer = nullptr;
  nlohmann::json trainer_state;  // TrainerState::ToJson
  nlohmann::json training_args;
  nlohmann::json scheduler;
  nlohmann::json sampler;
  nlohmann::json rng_state;
  nlohmann::json loop_state;
};

// Writes checkpoint-<step> under `run_dir` atomically; stores its path in `*final_dir`.
Status WriteCheckpoint(const std::string& run_dir, int64_t step, const CheckpointPayload& payload,
                       std::string* final_dir);

// Copies the weights of `checkpoint_dir`/model.h5 into `model`, checking names, shapes and
// dtypes (load_best_model_at_end).
Status LoadModelWeights(const std::string& checkpoint_dir, Model* model);

// Restores the AdamW moments and step counts of `checkpoint_dir`/optimizer.h5 onto
// `device`, checking that every parameter's state is present with the parameter's shape.
Status LoadOptimizerState(const std::string& checkpoint_dir, const torch::Device& device, AdamW* optimizer);

}  // namespace lockstep
