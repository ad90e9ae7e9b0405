#include "cli/train_command.h"

#include <cstdio>
#include <map>
#include <memory>

#include "cli/exit_codes.h"
#include "formats/json_file.h"
#include "trainer/progress.h"
#include "trainer/trainer.h"

namespace lockstep {
namespace {

struct TrainFlags {
  std::string config_path;
  std::string resume;
  CLI::Option* resume_option = nullptr;
  bool json = false;
  bool quiet = false;
  std::map<std::string, std::string> raw;  // knob name -> text as given
  std::map<std::string, CLI::Option*> options;
};

// Settings: defaults, then --config FILE.json, then explicit flags (the last word wins).
Status CollectArgs(const TrainFlags& flags, TrainingArgs* args) {
  if (!flags.config_path.empty()) {
    nlohmann::json config;
    LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(flags.config_path, &config));
    LOCKSTEP_RETURN_IF_ERROR(ApplyArgsJson(config, flags.config_path, args));
  }
  for (const auto& spec : TrainingArgSpecs()) {
    if (flags.options.at(spec.name)->count() == 0) continue;
    std::string text = flags.raw.at(spec.name);
    if (text.empty() && spec.type_name.rfind("bool", 0) == 0) text = "true";  // bare --flag
    LOCKSTEP_RETURN_IF_ERROR(spec.set_text(text, args));
  }
  return Status::Ok();
}

void PrintSummary(const TrainResult& r) {
  std::printf("\nTraining finished: %lld steps, epoch %.2f, %.1f s on %s (%.1f steps/s)\n",
              static_cast<long long>(r.global_step), r.epoch, r.runtime_s, r.device.c_str(),
              r.train_metrics.value("train_steps_per_second", 0.0));
  std::printf("  %-22s %.6f\n", "train_loss", r.train_loss);
  for (const char* key : {"eval_loss", "eval_accuracy", "perplexity"}) {
    if (r.eval_metrics.contains(key)) std::printf("  %-22s %.6f\n", key, r.eval_metrics[key].get<double>());
  }
  std::printf("  %-22s %s\n", "run directory", r.output_dir.c_str());
  std::printf("  %-22s %s/steps.jsonl.zst\n", "step log", r.output_dir.c_str());
  for (const auto& c : r.checkpoints) std::printf("  %-22s %s\n", "checkpoint", c.c_str());
  if (r.best_model_checkpoint) std::printf("  %-22s %s\n", "best checkpoint", r.best_model_checkpoint->c_str());
  if (!r.resumed_from.empty()) std::printf("  %-22s %s\n", "resumed from", r.resumed_from.c_str());
}

nlohmann::json ResultJson(const TrainResult& r) {
  return {{"output_dir", r.output_dir},
          {"device", r.device},
          {"global_step", r.global_step},
          {"epoch", r.epoch},
          {"train_loss", r.train_loss},
          {"runtime_s", r.runtime_s},
          {"train_metrics", r.train_metrics},
          {"eval_metrics", r.eval_metrics},
          {"checkpoints", r.checkpoints},
          {"resumed_from", r.resumed_from},
          {"best_model_checkpoint", r.best_model_checkpoint ? nlohmann::json(*r.best_model_checkpoint) : nlohmann::json()}};
}

}  // namespace

std::function<int()> AddTrainCommand(CLI::App* app) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* cmd = app->add_subcommand(
      "train",
      "Train the built-in reference model with Hugging Face Trainer semantics.\n"
      "Every optimizer step is recorded in OUTPUT_DIR/steps.jsonl.zst; checkpoints go to\n"
      "OUTPUT_DIR/checkpoint-<step>. With no flags, runs a short built-in default.");
  cmd->add_option("--config", flags->config_path, "JSON file of settings (same keys as the flags)");
  cmd->add_flag("--json", flags->json, "Print the result as JSON on stdout");
  cmd->add_flag("--quiet", flags->quiet, "No progress display");
  flags->resume_option = cmd->add_option(
      "--resume", flags->resume,
      "Resume: alone, from the newest valid checkpoint in output_dir; or from the given checkpoint dir");
  flags->resume_option->expected(0, 1)->type_name("[PATH]");
  for (const auto& spec : TrainingArgSpecs()) {
    CLI::Option* opt = cmd->add_option("--" + spec.name, flags->raw[spec.name], spec.help);
    opt->type_name(spec.type_name);
    if (spec.type_name.rfind("bool", 0) == 0) opt->expected(0, 1);
    flags->options[spec.name] = opt;
  }
  return [flags]() {
    TrainingArgs args;
    Status st = CollectArgs(*flags, &args);
    if (!st.ok()) {
      std::fprintf(stderr, "lockstep train: %s\n", st.message().c_str());
      return kExitUsage;
    }
    TrainOptions options;
    options.show_progress = !flags->quiet;
    options.interactive_progress = ProgressDisplay::StderrIsTerminal();
    if (flags->resume_option->count() > 0) options.resume_from = flags->resume;
    TrainResult result;
    st = RunTraining(args, options, &result);
    if (!st.ok()) {
      std::fprintf(stderr, "lockstep train: %s\n", st.message().c_str());
      return ExitCodeFor(st);
    }
    if (flags->json) {
      std::printf("%s\n", ResultJson(result).dump(2).c_str());
    } else {
      PrintSummary(result);
    }
    return kExitOk;
  };
}

}  // namespace lockstep
