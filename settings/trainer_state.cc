#include "settings/trainer_state.h"

#include <cmath>

namespace lockstep {

namespace {

// A number as Python writes it: an int when it is one.
nlohmann::json Interval(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) return nlohmann::json(static_cast<int64_t>(v));
  return nlohmann::json(v);
}

}  // namespace

nlohmann::json TrainerState::ToJson() const {
  using nlohmann::json;
  return json{
      {"best_global_step", best_global_step ? json(*best_global_step) : json(nullptr)},
      {"best_metric", best_metric ? json(*best_metric) : json(nullptr)},
      {"best_model_checkpoint", best_model_checkpoint ? json(*best_model_checkpoint) : json(nullptr)},
      {"epoch", epoch},
      {"eval_steps", Interval(eval_steps)},
      {"global_step", global_step},
      {"is_hyper_param_search", false},
      {"is_local_process_zero", true},
      {"is_world_process_zero", true},
      {"log_history", log_history},
      {"logging_steps", Interval(logging_steps)},
      {"max_steps", max_steps},
      {"num_input_tokens_seen", 0},
      {"num_train_epochs", num_train_epochs},
      {"save_steps", Interval(save_steps)},
      {"stateful_callbacks", json::object()},
      {"total_flos", total_flos},
      {"train_batch_size", train_batch_size},
      {"trial_name", nullptr},
      {"trial_params", nullptr},
  };
}

namespace {
template <typename T>
Status Optional(const nlohmann::json& j, const char* key, const std::string& origin, T* out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  try {
    *out = it->get<T>();
  } catch (const nlohmann::json::exception&) {
    return Status::Corruption(origin + ": field '" + key + "' has the wrong type (" + std::string(it->type_name()) +
                              ")");
  }
  return Status::Ok();
}
template <typename T>
Status OptionalOpt(const nlohmann::json& j, const char* key, const std::string& origin, std::optional<T>* out) {
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  T v;
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, key, origin, &v));
  *out = v;
  return Status::Ok();
}
}  // namespace

Status TrainerState::FromJson(const nlohmann::json& j, const std::string& origin, TrainerState* out) {
  if (!j.is_object()) return Status::Corruption(origin + ": trainer state is not a JSON object");
  if (!j.contains("global_step") || !j["global_step"].is_number_integer()) {
    return Status::Corruption(origin + ": global_step missing or not an integer");
  }
  if (!j.contains("log_history") || !j["log_history"].is_array()) {
    return Status::Corruption(origin + ": log_history missing or not a list");
  }
  TrainerState s;
  s.global_step = j["global_step"].get<int64_t>();
  s.log_history = j["log_history"];
  // Numbers HF writes as floats or ints depending on version are read as either.
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, "epoch", origin, &s.epoch));
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, "max_steps", origin, &s.max_steps));
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, "logging_steps", origin, &s.logging_steps));
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, "eval_steps", origin, &s.eval_steps));
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, "save_steps", origin, &s.save_steps));
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, "train_batch_size", origin, &s.train_batch_size));
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, "num_train_epochs", origin, &s.num_train_epochs));
  LOCKSTEP_RETURN_IF_ERROR(Optional(j, "total_flos", origin, &s.total_flos));
  LOCKSTEP_RETURN_IF_ERROR(OptionalOpt(j, "best_metric", origin, &s.best_metric));
  LOCKSTEP_RETURN_IF_ERROR(OptionalOpt(j, "best_global_step", origin, &s.best_global_step));
  LOCKSTEP_RETURN_IF_ERROR(OptionalOpt(j, "best_model_checkpoint", origin, &s.best_model_checkpoint));
  *out = std::move(s);
  return Status::Ok();
}

}  // namespace lockstep
