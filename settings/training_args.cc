#include "settings/training_args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include "formats/json_file.h"
#include "settings/lr_lambda.h"

namespace lockstep {
namespace {

using nlohmann::json;

// --- Converters, one overload per member type -----------------------------------------

const char* TypeName(int64_t*) { return "int"; }
const char* TypeName(double*) { return "float"; }
const char* TypeName(std::string*) { return "string"; }
const char* TypeName(bool*) { return "bool"; }
const char* TypeName(json*) { return "json"; }

// What a value must be, for messages: "an integer", "a number or none".
std::string Expected(const std::string& type_name) {
  const bool optional = !type_name.empty() && type_name.back() == '?';
  const std::string base = optional ? type_name.substr(0, type_name.size() - 1) : type_name;
  const std::string what = base == "int"     ? "an integer"
                           : base == "float" ? "a number"
                           : base == "bool"  ? "true or false"
                           : base == "json"  ? "JSON"
                                             : "text";
  return optional ? what + " or none" : what;
}

bool FromJson(const json& j, int64_t* out) {
  if (j.is_number_integer()) {
    *out = j.get<int64_t>();
    return true;
  }
  // HF configs sometimes write integral knobs as 4.0.
  if (j.is_number_float() && std::floor(j.get<double>()) == j.get<double>() && std::fabs(j.get<double>()) < 9e15) {
    *out = static_cast<int64_t>(j.get<double>());
    return true;
  }
  return false;
}
bool FromJson(const json& j, double* out) {
  if (!j.is_number()) return false;
  *out = j.get<double>();
  return true;
}
bool FromJson(const json& j, std::string* out) {
  if (!j.is_string()) return false;
  *out = j.get<std::string>();
  return true;
}
bool FromJson(const json& j, bool* out) {
  if (!j.is_boolean()) return false;
  *out = j.get<bool>();
  return true;
}
bool FromJson(const json& j, json* out) {
  *out = j;
  return true;
}

bool FromText(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}
bool FromText(const std::string& s, double* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v)) return false;
  *out = v;
  return true;
}
bool FromText(const std::string& s, std::string* out) {
  *out = s;
  return true;
}
bool FromText(const std::string& s, bool* out) {
  if (s == "true" || s == "True" || s == "1") {
    *out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "0") {
    *out = false;
    return true;
  }
  return false;
}
bool FromText(const std::string& s, json* out) { return ParseJson(s, "value", out).ok(); }

template <typename T>
ArgSpec Spec(const char* name, T TrainingArgs::*member, const char* help) {
  ArgSpec spec;
  spec.name = name;
  spec.help = help;
  spec.type_name = TypeName(static_cast<T*>(nullptr));
  const std::string key = name;
  const std::string type = spec.type_name;
  spec.set_json = [member, key, type](const json& j, TrainingArgs* a) {
    if (!FromJson(j, &(a->*member))) {
      return Status::InvalidArgument(key + " must be " + Expected(type) + ", got " + j.dump());
    }
    return Status::Ok();
  };
  spec.set_text = [member, key, type](const std::string& s, TrainingArgs* a) {
    if (!FromText(s, &(a->*member))) {
      return Status::InvalidArgument("--" + key + " expects " + Expected(type) + ", got '" + s + "'");
    }
    return Status::Ok();
  };
  spec.get = [member](const TrainingArgs& a) { return json(a.*member); };
  return spec;
}

// Optional knobs: JSON null or the text "none" unsets them, as HF's None.
template <typename T>
ArgSpec Spec(const char* name, std::optional<T> TrainingArgs::*member, const char* help) {
  ArgSpec spec;
  spec.name = name;
  spec.help = help;
  spec.type_name = std::string(TypeName(static_cast<T*>(nullptr))) + "?";
  const std::string key = name;
  const std::string type = spec.type_name;
  spec.set_json = [member, key, type](const json& j, TrainingArgs* a) {
    if (j.is_null()) {
      (a->*member).reset();
      return Status::Ok();
    }
    T v;
    if (!FromJson(j, &v)) {
      return Status::InvalidArgument(key + " must be " + Expected(type) + ", got " + j.dump());
    }
    a->*member = v;
    return Status::Ok();
  };
  spec.set_text = [member, key, type](const std::string& s, TrainingArgs* a) {
    if (s == "none" || s == "None" || s == "null") {
      (a->*member).reset();
      return Status::Ok();
    }
    T v;
    if (!FromText(s, &v)) {
      return Status::InvalidArgument("--" + key + " expects " + Expected(type) + ", got '" + s + "'");
    }
    a->*member = v;
    return Status::Ok();
  };
  spec.get = [member](const TrainingArgs& a) { return (a.*member).has_value() ? json(*(a.*member)) : json(nullptr); };
  return spec;
}

std::vector<ArgSpec> BuildSpecs() {
  using A = TrainingArgs;
  return {
      Spec("output_dir", &A::output_dir, "Run directory: checkpoints, step log, results"),
      Spec("overwrite_output_dir", &A::overwrite_output_dir,
           "Replace the run already in output_dir (its checkpoints, step log, results)"),
      Spec("per_device_train_batch_size", &A::per_device_train_batch_size, "Samples per training micro-batch"),
      Spec("per_device_eval_batch_size", &A::per_device_eval_batch_size, "Samples per evaluation batch"),
      Spec("gradient_accumulation_steps", &A::gradient_accumulation_steps, "Micro-batches per optimizer update"),
      Spec("num_train_epochs", &A::num_train_epochs, "Epochs to train (may be fractional)"),
      Spec("max_steps", &A::max_steps, "Optimizer updates to run; > 0 overrides num_train_epochs"),
      Spec("learning_rate", &A::learning_rate, "Peak learning rate of AdamW"),
      Spec("weight_decay", &A::weight_decay, "AdamW decoupled weight decay (not on biases or norm weights)"),
      Spec("adam_beta1", &A::adam_beta1, "AdamW beta1"),
      Spec("adam_beta2", &A::adam_beta2, "AdamW beta2"),
      Spec("adam_epsilon", &A::adam_epsilon, "AdamW epsilon"),
      Spec("max_grad_norm", &A::max_grad_norm, "Gradient clipping norm; <= 0 disables clipping"),
      Spec("lr_scheduler_type", &A::lr_scheduler_type,
           "linear|cosine|cosine_with_restarts|polynomial|constant|constant_with_warmup|inverse_sqrt|cosine_with_min_"
           "lr|cosine_warmup_with_min_lr|warmup_stable_decay|reduce_lr_on_plateau"),
      Spec("lr_scheduler_kwargs", &A::lr_scheduler_kwargs, "Scheduler options as JSON, e.g. '{\"num_cycles\": 2}'"),
      Spec("warmup_steps", &A::warmup_steps, "Warmup updates; below 1, a ratio of the total updates"),
      Spec("logging_strategy", &A::logging_strategy, "no|steps|epoch"),
      Spec("logging_steps", &A::logging_steps, "Log to console and log_history every N updates (below 1: ratio)"),
      Spec("logging_first_step", &A::logging_first_step, "Also log the first update"),
      Spec("eval_strategy", &A::eval_strategy, "no|steps|epoch"),
      Spec("eval_steps", &A::eval_steps, "Evaluate every N updates (default: logging_steps)"),
      Spec("eval_delay", &A::eval_delay, "No evaluation before this update (steps) or epoch (epoch)"),
      Spec("eval_on_start", &A::eval_on_start, "Evaluate once before the first update"),
      Spec("save_strategy", &A::save_strategy, "no|steps|epoch|best"),
      Spec("save_steps", &A::save_steps, "Save a checkpoint every N updates (below 1: ratio)"),
      Spec("save_total_limit", &A::save_total_limit,
           "Keep at most N checkpoints (the best is protected; unset or <= 0: keep all)"),
      Spec("save_only_model", &A::save_only_model,
           "Checkpoints hold the model alone: no optimizer, scheduler or generators (not resumable exactly)"),
      Spec("save_async", &A::save_async,
           "Write checkpoints in the background while training goes on (same bytes; the next save, "
           "the end and a signal wait for it)"),
      Spec("load_best_model_at_end", &A::load_best_model_at_end, "Reload the best checkpoint's weights at the end"),
      Spec("metric_for_best_model", &A::metric_for_best_model, "loss|accuracy (eval_ prefix optional)"),
      Spec("greater_is_better", &A::greater_is_better, "Whether a larger metric is better"),
      Spec("seed", &A::seed, "Seed for model init and dropout"),
      Spec("data_seed", &A::data_seed, "Seed for the data sampler (default: seed)"),
      Spec("dataloader_drop_last", &A::dataloader_drop_last, "Drop the last incomplete micro-batch of each epoch"),
      Spec("ddp_timeout", &A::ddp_timeout, "Seconds a data-parallel collective may wait for a peer rank"),
      Spec("model", &A::model, "Built-in model: mlp (classifier) or gpt (decoder-only LM)"),
      Spec("train_samples", &A::train_samples, "Size of the built-in training split"),
      Spec("eval_samples", &A::eval_samples, "Size of the built-in evaluation split"),
      Spec("device", &A::device, "auto|cpu|cuda (auto takes CUDA when available)"),
      Spec("num_threads", &A::num_threads,
           "Intra-op and BLAS threads; decides the run's bits (default: one per physical core, or "
           "OMP_NUM_THREADS, on a fresh run; the checkpoint's on a resume)"),
      Spec("world_size", &A::world_size,
           "Processes in the data-parallel job; decides the run (default: the launcher's WORLD_SIZE, 1 without "
           "one; start several with --nproc_per_node)"),
      Spec("world_invariant", &A::world_invariant,
           "The same bits at any world size: each unit's gradient alone, summed in global order (slower); a "
           "checkpoint resumes at any world size that keeps per_device_train_batch_size x world_size"),
      Spec("world_invariant_unit", &A::world_invariant_unit,
           "world_invariant: samples per unit; the global micro-batch must be a multiple of it"),
      Spec("dropout", &A::dropout, "Dropout probability of both models"),
      Spec("input_dim", &A::input_dim, "mlp: input features"),
      Spec("hidden_size", &A::hidden_size, "mlp: hidden width"),
      Spec("num_labels", &A::num_labels, "mlp: classes"),
      Spec("vocab_size", &A::vocab_size, "gpt: vocabulary size"),
      Spec("block_size", &A::block_size, "gpt: tokens per sample"),
      Spec("n_layer", &A::n_layer, "gpt: transformer blocks"),
      Spec("n_head", &A::n_head, "gpt: attention heads"),
      Spec("n_embd", &A::n_embd, "gpt: embedding width"),
  };
}

std::string StripEvalPrefix(const std::string& m) { return m.rfind("eval_", 0) == 0 ? m.substr(5) : m; }

double EvalSteps(const TrainingArgs& a) { return ResolvedEvalSteps(a).value_or(0); }

// A setting's number as Python prints it: "2.5", "3.0".
std::string FormatNumber(double v) {
  std::ostringstream out;
  out << v;
  std::string s = out.str();
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

const std::vector<ArgSpec>& TrainingArgSpecs() {
  static const std::vector<ArgSpec> specs = BuildSpecs();
  return specs;
}

Status ApplyArgsJson(const json& config, const std::string& origin, TrainingArgs* args) {
  if (!config.is_object()) return Status::InvalidArgument(origin + ": config must be a JSON object");
  const auto& specs = TrainingArgSpecs();
  for (const auto& [key, value] : config.items()) {
    const ArgSpec* spec = nullptr;
    for (const auto& s : specs)
      if (s.name == key) spec = &s;
    if (spec == nullptr) {
      return Status::InvalidArgument(origin + ": unknown setting '" + key +
                                     "' (run `lockstep train --help` for the supported names)");
    }
    Status st = spec->set_json(value, args);
    if (!st.ok()) return Status::InvalidArgument(origin + ": " + st.message());
  }
  return Status::Ok();
}

json TrainingArgsToJson(const TrainingArgs& args) {
  json out = json::object();
  for (const auto& s : TrainingArgSpecs()) out[s.name] = s.get(args);
  return out;
}

std::optional<double> ResolvedEvalSteps(const TrainingArgs& args) {
  if (args.eval_steps && *args.eval_steps != 0) return args.eval_steps;
  if (args.eval_strategy == "steps") return args.logging_steps;
  return args.eval_steps;
}

std::string BestMetricKey(const TrainingArgs& args) {
  if (args.metric_for_best_model) return "eval_" + StripEvalPrefix(*args.metric_for_best_model);
  if (args.load_best_model_at_end || args.lr_scheduler_type == kReduceLrOnPlateau) return "eval_loss";
  return "";
}

bool GreaterIsBetter(const TrainingArgs& args) {
  if (args.greater_is_better) return *args.greater_is_better;
  const std::string key = BestMetricKey(args);
  return !(key.size() >= 4 && key.compare(key.size() - 4, 4, "loss") == 0);
}

namespace {

// The settings' problems, collected so one message lists them all.
struct Problems {
  std::vector<std::string> list;
  void need(bool ok, const std::string& msg) {
    if (!ok) list.push_back(msg);
  }
};

// Batches, steps, the optimizer, the schedule, saving.
void CheckLoopArgs(const TrainingArgs& a, Problems* p) {
  const auto need = [p](bool ok, const std::string& msg) { p->need(ok, msg); };
  need(!a.output_dir.empty(), "output_dir must not be empty");
  need(a.per_device_train_batch_size >= 1,
       "per_device_train_batch_size must be >= 1, got " + std::to_string(a.per_device_train_batch_size));
  need(a.per_device_eval_batch_size >= 1,
       "per_device_eval_batch_size must be >= 1, got " + std::to_string(a.per_device_eval_batch_size));
  need(a.gradient_accumulation_steps >= 1,
       "gradient_accumulation_steps must be >= 1, got " + std::to_string(a.gradient_accumulation_steps));
  need(a.ddp_timeout >= 1, "ddp_timeout must be >= 1 second, got " + std::to_string(a.ddp_timeout));
  need(!a.world_size || *a.world_size >= 1, "world_size must be >= 1");
  need(a.world_invariant_unit >= 1, "world_invariant_unit must be >= 1, got " + std::to_string(a.world_invariant_unit));
  need(a.max_steps == -1 || a.max_steps > 0, "max_steps must be -1 (use epochs) or > 0");
  need(a.max_steps > 0 || a.num_train_epochs > 0, "num_train_epochs must be > 0 when max_steps is not set");
  need(a.learning_rate >= 0, "learning_rate must be >= 0");
  need(a.weight_decay >= 0, "weight_decay must be >= 0");
  need(a.adam_beta1 >= 0 && a.adam_beta1 < 1, "adam_beta1 must be in [0, 1)");
  need(a.adam_beta2 >= 0 && a.adam_beta2 < 1, "adam_beta2 must be in [0, 1)");
  need(a.adam_epsilon > 0, "adam_epsilon must be > 0");
  need(a.warmup_steps >= 0, "warmup_steps must be >= 0");
  const auto interval = [](const std::string& s) { return s == "no" || s == "steps" || s == "epoch"; };
  need(interval(a.logging_strategy), "logging_strategy must be no, steps or epoch, got '" + a.logging_strategy + "'");
  need(interval(a.eval_strategy), "eval_strategy must be no, steps or epoch, got '" + a.eval_strategy + "'");
  need(interval(a.save_strategy) || a.save_strategy == "best",
       "save_strategy must be no, steps, epoch or best, got '" + a.save_strategy + "'");
  // transformers' TrainingArguments: a step interval is an integer above 1, a ratio below.
  const auto whole_above_one = [&](const char* name, double steps, bool applies) {
    need(!applies || steps <= 1 || steps == std::floor(steps),
         std::string("--") + name + " must be an integer if bigger than 1: " + FormatNumber(steps));
  };
  need(a.logging_strategy != "steps" || a.logging_steps != 0,
       "logging strategy steps requires non-zero --logging_steps");
  need(a.eval_strategy != "steps" || EvalSteps(a) != 0,
       "evaluation strategy steps requires either non-zero --eval_steps or --logging_steps");
  need(a.logging_strategy != "steps" || a.logging_steps > 0, "logging_steps must be > 0");
  need(a.save_strategy != "steps" || a.save_steps > 0, "save_steps must be > 0");
  need(a.eval_strategy != "steps" || EvalSteps(a) > 0, "eval_steps must be > 0");
  whole_above_one("logging_steps", a.logging_steps, a.logging_strategy == "steps");
  whole_above_one("eval_steps", EvalSteps(a), a.eval_strategy == "steps");
  whole_above_one("save_steps", a.save_steps, a.save_strategy == "steps");
  need(a.eval_delay >= 0, "eval_delay must be >= 0");
  LrLambda schedule;  // the type and its kwargs, as transformers' get_scheduler takes them
  const Status st = LrLambda::Create({a.lr_scheduler_type, a.lr_scheduler_kwargs, a.learning_rate, 0, 1}, &schedule);
  need(st.ok(), st.message());
}

// transformers' rule for load_best_model_at_end (TrainingArguments.__post_init__): the save
// and eval strategies match (unless saving the best), and saves fall on evaluations.
void CheckLoadBest(const TrainingArgs& a, Problems* p) {
  if (!a.load_best_model_at_end || a.save_strategy == "best") return;
  if (a.eval_strategy != a.save_strategy) {
    return p->need(false,
                   "--load_best_model_at_end requires the save and eval strategy to match, except when "
                   "--save_strategy=\"best\", but found eval_strategy " +
                       a.eval_strategy + " and save_strategy " + a.save_strategy);
  }
  const double save = a.save_steps, eval = EvalSteps(a);
  if (a.eval_strategy != "steps" || eval == 0 || std::fmod(save, eval) == 0) return;
  if (eval < 1 || save < 1) {
    p->need(eval < 1 && save < 1,
            "--load_best_model_at_end requires the saving steps to be a multiple of the evaluation steps, which "
            "cannot get guaranteed when mixing ratio and absolute steps for save_steps " +
                FormatNumber(save) + " and eval_steps " + FormatNumber(eval));
    p->need(!(eval < 1 && save < 1) || std::fmod(save * 1e6, eval * 1e6) == 0,
            "--load_best_model_at_end requires the saving steps to be a multiple of the evaluation steps, but found " +
                FormatNumber(save) + ", which is not a multiple of " + FormatNumber(eval));
    return;
  }
  p->need(false,
          "--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, "
          "but found " +
              FormatNumber(save) + ", which is not a round multiple of " + FormatNumber(eval));
}

void CheckEvalArgs(const TrainingArgs& a, Problems* p) {
  const auto need = [p](bool ok, const std::string& msg) { p->need(ok, msg); };
  // Best-model tracking and evaluation.
  const std::string metric = BestMetricKey(a);
  if (!metric.empty()) {
    const std::string m = StripEvalPrefix(metric);
    need(m == "loss" || (m == "accuracy" && a.model == "mlp"), "metric_for_best_model must be loss" +
                                                                   std::string(a.model == "mlp" ? " or accuracy" : "") +
                                                                   " for model " + a.model + ", got '" + m + "'");
  }
  need(a.save_strategy != "best" || !metric.empty(),
       "save_strategy best needs metric_for_best_model (or load_best_model_at_end)");
  need(a.lr_scheduler_type != kReduceLrOnPlateau || a.eval_strategy != "no",
       "lr_scheduler_type reduce_lr_on_plateau requires an eval strategy");
  CheckLoadBest(a, p);
  const bool evaluates = a.eval_strategy != "no" || a.eval_on_start;
  need(!evaluates || a.eval_samples >= 1, "evaluation needs eval_samples >= 1");
  // With drop_last the eval loader drops its short last batch too: an eval split smaller
  // than a batch gives no eval_loss, which the best-model metric (or the plateau) needs.
  const int64_t eval_batch = a.per_device_eval_batch_size * a.world_size.value_or(1);
  need(!(evaluates && !metric.empty() && a.dataloader_drop_last && a.eval_samples < eval_batch),
       "dataloader_drop_last with eval_samples < per_device_eval_batch_size leaves no eval batch, so " + metric +
           " (metric_for_best_model) is never computed");
}

void CheckModelArgs(const TrainingArgs& a, Problems* p) {
  const auto need = [p](bool ok, const std::string& msg) { p->need(ok, msg); };
  // Built-in model and data.
  need(a.model == "mlp" || a.model == "gpt", "model must be mlp or gpt, got '" + a.model + "'");
  need(a.device == "auto" || a.device == "cpu" || a.device == "cuda",
       "device must be auto, cpu or cuda, got '" + a.device + "'");
  need(!a.num_threads || (*a.num_threads >= 1 && *a.num_threads <= 1024),
       "num_threads must be between 1 and 1024 (or unset for LibTorch's default)");
  need(a.train_samples >= 1, "train_samples must be >= 1");
  need(a.eval_samples >= 0, "eval_samples must be >= 0");
  need(!a.dataloader_drop_last || a.train_samples >= a.per_device_train_batch_size,
       "dataloader_drop_last with train_samples < per_device_train_batch_size leaves no batch");
  need(a.dropout >= 0 && a.dropout < 1, "dropout must be in [0, 1)");
  if (a.model == "mlp") {
    need(a.input_dim >= 1 && a.hidden_size >= 1, "input_dim and hidden_size must be >= 1");
    need(a.num_labels >= 2, "num_labels must be >= 2");
  } else if (a.model == "gpt") {
    need(a.vocab_size >= 2 && a.block_size >= 2, "vocab_size and block_size must be >= 2");
    need(a.n_layer >= 1 && a.n_head >= 1 && a.n_embd >= 1, "n_layer, n_head, n_embd must be >= 1");
    need(a.n_head >= 1 && a.n_embd % a.n_head == 0,
         "n_embd (" + std::to_string(a.n_embd) + ") must be divisible by n_head (" + std::to_string(a.n_head) + ")");
  }
}

}  // namespace

Status ValidateTrainingArgs(const TrainingArgs& a) {
  Problems problems;
  CheckLoopArgs(a, &problems);
  CheckEvalArgs(a, &problems);
  CheckModelArgs(a, &problems);
  if (problems.list.empty()) return Status::Ok();
  std::ostringstream msg;
  msg << "invalid training settings:";
  for (const auto& p : problems.list) msg << "\n  - " << p;
  return Status::InvalidArgument(msg.str());
}

}  // namespace lockstep
