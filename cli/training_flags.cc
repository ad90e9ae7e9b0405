#include "cli/training_flags.h"

#include <algorithm>
#include <cctype>

#include "cli/arg_check.h"
#include "formats/json_file.h"

namespace lockstep {

namespace {

// The default as --help shows it: "500", "linear", "none" for an unset optional.
std::string DefaultText(const ArgSpec& spec) {
  const nlohmann::json value = spec.get(TrainingArgs());
  if (value.is_null()) return "none";
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// "int?" -> "INT|none", as --help shows it.
std::string HelpTypeName(const std::string& type_name) {
  const bool optional = !type_name.empty() && type_name.back() == '?';
  std::string name = optional ? type_name.substr(0, type_name.size() - 1) : type_name;
  if (name == "string") name = "text";
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return optional ? name + "|none" : name;
}

}  // namespace

void AddTrainingFlags(CLI::App* cmd, TrainingFlags* flags) {
  cmd->add_option("--config", flags->config_path, "JSON file of settings (same keys as the flags)");
  for (const auto& spec : TrainingArgSpecs()) {
    CLI::Option* opt = cmd->add_option("--" + spec.name, flags->raw[spec.name], spec.help);
    opt->type_name(HelpTypeName(spec.type_name));
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // as argparse: the last one wins
    if (spec.type_name.rfind("bool", 0) == 0) {
      // HF's parser reads a bare boolean flag as true. CLI11 would hand a bare option its
      // default_str ("false"), so a bool's default is shown in its help text instead.
      opt->expected(0, 1);
      opt->option_text(HelpTypeName(spec.type_name) + "=" + DefaultText(spec) + " (bare: true)");
    } else {
      opt->default_str(DefaultText(spec));
    }
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
    std::vector<std::string> names;
    for (const auto& spec : TrainingArgSpecs()) names.push_back(spec.name);
    for (auto it = config.begin(); config.is_object() && it != config.end(); ++it) {
      if (std::find(names.begin(), names.end(), it.key()) != names.end()) continue;
      const std::string closest = ClosestName(it.key(), names);
      return Status::InvalidArgument(flags.config_path + ": unknown setting '" + it.key() + "'" +
                                     (closest.empty() ? "" : "; did you mean '" + closest + "'?") +
                                     " (lockstep train --help lists every setting)");
    }
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
