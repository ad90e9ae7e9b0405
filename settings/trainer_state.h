// TrainerState: the Hugging Face Trainer's trainer_state.json, field for field.
// No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct TrainerState {
  double epoch = 0;
  int64_t global_step = 0;
  int64_t max_steps = 0;
  // As TrainerState.compute_steps records them: a ratio of max_steps made whole, else the
  // setting as given (written as an integer when it is one).
  double logging_steps = 500;
  double eval_steps = 500;
  double save_steps = 500;
  int64_t train_batch_size = 8;
  int64_t num_train_epochs = 0;
  double total_flos = 0;
  nlohmann::json log_history = nlohmann::json::array();
  std::optional<double> best_metric;
  std::optional<int64_t> best_global_step;
  std::optional<std::string> best_model_checkpoint;

  // HF's layout: sorted keys, every field present (unset optionals as null).
  nlohmann::json ToJson() const;

  // Reads HF's trainer_state.json; all fields but global_step and log_history are optional
  // (older transformers lack several). Wrong types are Corruption naming `origin`.
  static Status FromJson(const nlohmann::json& j, const std::string& origin, TrainerState* out);
};

}  // namespace lockstep
