#include "cli/training_flags.h"

#include "formats/json_file.h"

namespace lockstep {

void AddTrainingFlags(CLI::App* cmd, TrainingFlags* flags) {
  cmd->add_option("--config", flags->config_path, "JSON file of settings (same keys as the flags)");
  for (const auto& spec : TrainingArgSpecs()) {
    CLI::Option* opt = cmd->add_option("--" + spec.name, flags->raw[spec.name], spec.help);
    opt->type_name(spec.type_name);
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // as argparse: the last one wins
    if (spec.type_name.rfind("bool", 0) == 0) opt->expected(0, 1);
    opt->group("Training settings (Hugging Face TrainingArguments names)");
    flags->options[spec.name] = opt;
  }
}

bool FlagGiven(const TrainingFlags& flags, const std::string& name) {
  const auto it = flags.options.find(name);
  return it != flags.options.end() && it->second->count() > 0;
}

Status CollectTrainingArgs(const TrainingFlags& flags, TrainingArgs* args) {
  if (!flags.config_path.empty()) {
    nlohmann::json config;
    LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(flags.config_path, &config));
    LOCKSTEP_RETURN_IF_ERROR(ApplyArgsJson(config, flags.config_path, args));
  }
  for (const auto& spec : TrainingArgSpecs()) {
    if (!FlagGiven(flags, spec.name)) continue;
    std::string text = flags.raw.at(spec.name);
    if (text.empty() && spec.type_name.rfind("bool", 0) == 0) text = "true";  // bare --flag
    LOCKSTEP_RETURN_IF_ERROR(spec.set_text(text, args));
  }
  return Status::Ok();
}

}  // namespace lockstep
