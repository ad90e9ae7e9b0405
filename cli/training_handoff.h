// The `lockstep` binary links no LibTorch, so `inspect` starts in milliseconds instead of
// the half second LibTorch takes to load. The commands that train (`train`,
// `verify-resume`) live in the helper `lockstep-train`, installed beside it; `lockstep`
// hands them over with exec, so the user sees one tool with one set of exit codes.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "cli/run_app.h"

namespace lockstep {

// The name of the helper binary, looked up in the directory of the running `lockstep`.
constexpr const char kTrainingHelper[] = "lockstep-train";

// The one-line summaries `lockstep --help` lists for the helper's subcommands (the
// helper's own --help gives the full descriptions).
constexpr const char kTrainSummary[] =
    "Train the built-in reference model with Hugging Face Trainer semantics.";
constexpr const char kVerifyResumeSummary[] =
    "Prove that resuming gives the same run: interrupt, kill, resume, compare.";
constexpr const char kReplaySummary[] =
    "Re-execute logged steps from a checkpoint and check them against the step log.";

// True when `name` is a subcommand that runs in the training helper.
bool IsTrainingCommand(const std::string& name);

// Lists the training subcommands on `app` (for --help), without their flags: those are
// the helper's to parse. Should parsing ever select one, `commands` hands argv over.
void AddTrainingCommandStubs(CLI::App* app, CommandTable* commands, int argc, char** argv);

// The subcommand argv names, or "" when there is none: the first argument that is not an
// option (the top level takes only --help and --version, neither with a value), so
// `lockstep --help train` reaches the helper too and shows train's flags.
std::string SubcommandOf(int argc, char** argv);

// Replaces this process with the helper, passing argv unchanged after argv[0]. Returns
// only on failure, after printing which file could not be run and why: kExitUsage (2).
int ExecTrainingHelper(int argc, char** argv);

}  // namespace lockstep
