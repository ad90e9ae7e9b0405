// lockstep: prove that a training run, resumed or not, is the same run.
// One tool, one subcommand per capability; exit codes in cli/exit_codes.h.
//
// This binary links no LibTorch: `diff` and `inspect` must start fast and run where no framework is
// installed. The training subcommands are handed to `lockstep-train` (train_main.cc) by
// exec before any parsing, so their exit codes are the helper's own; only their --help is
// answered here, from the same torch-free flag definitions (training_commands.h).
#include <CLI/CLI.hpp>

#include "cli/bench_command.h"
#include "cli/diff_command.h"
#include "cli/inspect_command.h"
#include "cli/report_command.h"
#include "cli/run_app.h"
#include "cli/training_handoff.h"

int main(int argc, char** argv) {
  if (lockstep::IsTrainingCommand(lockstep::SubcommandOf(argc, argv)) && !lockstep::AsksForHelp(argc, argv)) {
    return lockstep::ExecTrainingHelper(argc, argv);
  }
  CLI::App app{"lockstep: provably reproducible training runs", "lockstep"};
  app.set_version_flag("--version", "lockstep " LOCKSTEP_VERSION);
  app.require_subcommand(1);

  lockstep::CommandTable commands;
  commands["bench"] = lockstep::AddBenchCommand(&app);
  commands["diff"] = lockstep::AddDiffCommand(&app);
  commands["inspect"] = lockstep::AddInspectCommand(&app);
  commands["report"] = lockstep::AddReportCommand(&app);
  lockstep::AddTrainingCommands(&app, &commands, argc, argv);
  return lockstep::RunApp(&app, commands, argc, argv);
}
