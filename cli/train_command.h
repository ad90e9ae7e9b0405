// `lockstep train`: run the reference trainer with HF TrainingArguments flags.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace lockstep {

// Registers the subcommand on `app`; the returned function runs it after parsing and
// yields the process exit code.
std::function<int()> AddTrainCommand(CLI::App* app);

}  // namespace lockstep
