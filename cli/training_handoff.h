// The `lockstep` binary links no LibTorch, so `inspect` and `diff` start in milliseconds
// instead of the half second LibTorch takes to load. The commands that train (`train`,
// `verify-resume`, `replay`) run in the helper `lockstep-train`, installed beside it;
// `lockstep` hands them over with exec, so the user sees one tool with one set of exit
// codes. Their flags are defined torch-free (training_commands.h), so `lockstep` answers
// their --help itself.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/run_app.h"

namespace lockstep {

// The name of the helper binary, looked up in the directory of the running `lockstep`.
constexpr const char kTrainingHelper[] = "lockstep-train";

// True when `name` is a subcommand that runs in the training helper.
bool IsTrainingCommand(const std::string& name);

// True when argv asks for help (--help or -h anywhere): `lockstep` answers it without exec.
bool AsksForHelp(int argc, char** argv);

// Defines the training subcommands on `app` with all their flags (for --help and for the
// top-level list); should parsing ever select one, `commands` hands argv to the helper.
void AddTrainingCommands(CLI::App* app, CommandTable* commands, int argc, char** argv);

// The subcommand argv names, or "" when there is none: the first argument that is not an
// option (the top level takes only --help and --version, neither with a value), so
// `lockstep --help train` reaches the helper too and shows train's flags.
std::string SubcommandOf(int argc, char** argv);

// Replaces this process with the helper, passing argv unchanged after argv[0]. Returns
// only on failure, after printing which file could not be run and why: kExitUsage (2).
int ExecTrainingHelper(int argc, char** argv);

}  // namespace lockstep
