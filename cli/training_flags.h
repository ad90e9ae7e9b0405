// The training flags shared by `lockstep train` and `lockstep verify-resume`: one flag per
// TrainingArgs knob (HF names), plus --config FILE.json. Defaults, then the config file,
// then explicit flags: the last word wins.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <string>

#include "formats/status.h"
#include "settings/training_args.h"

namespace lockstep {

struct TrainingFlags {
  std::string config_path;
  std::map<std::string, std::string> raw;  // knob name -> text as given
  std::map<std::string, CLI::Option*> options;
};

// Registers --config and every knob's flag on `cmd`; `flags` must outlive parsing.
void AddTrainingFlags(CLI::App* cmd, TrainingFlags* flags);

// The settings the flags describe. InvalidArgument (naming the flag or config file) when
// a value does not parse; ValidateTrainingArgs is left to the caller.
Status CollectTrainingArgs(const TrainingFlags& flags, TrainingArgs* args);

// True when the knob `name` was given as a flag.
bool FlagGiven(const TrainingFlags& flags, const std::string& name);

}  // namespace lockstep
