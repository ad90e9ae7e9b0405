// TrainingArgs: the Hugging Face TrainingArguments knobs Lockstep honours, with HF's names
// and defaults, plus the built-in model/dataset/device settings. No LibTorch here.
//
// One table (TrainingArgSpecs) drives the CLI flags, the --config JSON keys and the JSON
// written into checkpoints, so the three can never drift apart.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct TrainingArgs {
  // --- Hugging Face TrainingArguments: names verbatim, HF defaults ---
  std::string output_dir = "lockstep_output";
  bool overwrite_output_dir = false;  // a fresh run into a directory holding a run is refused
  int64_t per_device_train_batch_size = 8;
  int64_t per_device_eval_batch_size = 8;
  int64_t gradient_accumulation_steps = 1;
  double num_train_epochs = 3.0;
  int64_t max_steps = -1;  // > 0 overrides num_train_epochs
  double learning_rate = 5e-5;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;  // <= 0: no clipping
  std::string lr_scheduler_type = "linear";
  nlohmann::json lr_scheduler_kwargs = nlohmann::json::object();
  double warmup_steps = 0;                 // an int, or a ratio of the total steps when below 1
  std::string logging_strategy = "steps";  // no | steps | epoch
  double logging_steps = 500;              // below 1: a ratio of max_steps (as HF)
  bool logging_first_step = false;         // also log step 1
  std::string eval_strategy = "no";        // no | steps | epoch
  std::optional<double> eval_steps;        // unset: logging_steps under eval_strategy steps
  double eval_delay = 0;                   // no evaluation before this step (steps) or epoch (epoch)
  bool eval_on_start = false;              // evaluate once before the first step
  std::string save_strategy = "steps";     // no | steps | epoch | best
  double save_steps = 500;
  std::optional<int64_t> save_total_limit;  // unset, or <= 0: keep every checkpoint
  // Checkpoints hold the model alone (with trainer_state.json and training_args.json): no
  // optimizer, scheduler, sampler or generators, so no resume continues the run from one.
  bool save_only_model = false;
  // Lockstep's: write each checkpoint in the background from a snapshot taken at the step
  // boundary (after CheckFreq, PyTorch DCP). Changes when a save's I/O happens, never its bytes.
  bool save_async = false;
  bool load_best_model_at_end = false;
  std::optional<std::string> metric_for_best_model;  // unset: "loss" when load_best_model_at_end
  std::optional<bool> greater_is_better;             // unset: false for *loss metrics
  int64_t seed = 42;
  std::optional<int64_t> data_seed;  // seeds the sampler; unset: seed
  bool dataloader_drop_last = false;
  int64_t ddp_timeout = 1800;  // seconds every collective and rendezvous may wait for a peer

  // --- Lockstep: built-in model and dataset, device ---
  std::string model = "mlp";  // mlp | gpt
  int64_t train_samples = 1024;
  int64_t eval_samples = 256;
  std::string device = "auto";  // auto | cpu | cuda
  // Intra-op threads. The thread count changes the order of floating-point reductions, so
  // it decides the run's bits: unset takes LibTorch's default (OMP_NUM_THREADS or the core
  // count) on a fresh run and the checkpoint's value on a resume, and is recorded resolved.
  std::optional<int64_t> num_threads;
  // Processes of a data-parallel job. It decides the run (the effective batch is
  // per_device_train_batch_size x world_size x gradient_accumulation_steps): unset takes the
  // launcher's WORLD_SIZE (1 without one), and is recorded resolved; a value that differs
  // from the launcher's is refused.
  std::optional<int64_t> world_size;
  // Lockstep's world-size-invariant data parallelism (docs/data-parallel.md): the step's global
  // batch is cut into units of world_invariant_unit samples, each unit's gradient is computed
  // alone (its dropout from a generator of (seed, step, unit)) and the units are summed in
  // global order, so the run has the same bits at every world size, and a checkpoint resumes
  // at any world size that keeps per_device_train_batch_size x world_size.
  bool world_invariant = false;
  int64_t world_invariant_unit = 1;
  double dropout = 0.1;
  int64_t input_dim = 32;     // mlp: features per sample
  int64_t hidden_size = 128;  // mlp: hidden width
  int64_t num_labels = 8;     // mlp: classes
  int64_t vocab_size = 64;    // gpt
  int64_t block_size = 32;    // gpt: tokens per sample
  int64_t n_layer = 2;        // gpt
  int64_t n_head = 4;         // gpt
  int64_t n_embd = 64;        // gpt
};

// One knob: its name (the CLI flag without "--" and the JSON key), a help line, and how to
// set it from JSON or from a command-line string.
struct ArgSpec {
  std::string name;
  std::string help;
  std::string type_name;  // "int", "float", "string", "bool", "json", with "?" if optional
  std::function<Status(const nlohmann::json&, TrainingArgs*)> set_json;
  std::function<Status(const std::string&, TrainingArgs*)> set_text;
  std::function<nlohmann::json(const TrainingArgs&)> get;
};

// Every knob, in help order.
const std::vector<ArgSpec>& TrainingArgSpecs();

// Applies every key of the JSON object `config` (from `origin`, for messages). Unknown keys
// and values of the wrong type are refused.
Status ApplyArgsJson(const nlohmann::json& config, const std::string& origin, TrainingArgs* args);

// All knobs as a JSON object (unset optionals as null), keys sorted.
nlohmann::json TrainingArgsToJson(const TrainingArgs& args);

// Refuses out-of-range, unknown or inconsistent settings with a message naming each knob:
// what transformers' TrainingArguments refuses (tests/python/hf_parity_test.cc compares the two on
// random settings), and what the built-in model and data cannot do.
Status ValidateTrainingArgs(const TrainingArgs& args);

// transformers' eval_steps after TrainingArguments.__post_init__: the one given, or under
// eval_strategy steps logging_steps when none (or 0) is given; unset otherwise (the
// TrainerState then keeps its default, 500).
std::optional<double> ResolvedEvalSteps(const TrainingArgs& args);

// The metric best-checkpoint tracking (and reduce_lr_on_plateau) uses ("eval_loss",
// "eval_accuracy"), or "" for none: HF's metric_for_best_model, "loss" by default when
// load_best_model_at_end or the reduce_lr_on_plateau scheduler needs one.
std::string BestMetricKey(const TrainingArgs& args);
bool GreaterIsBetter(const TrainingArgs& args);

}  // namespace lockstep
