// lockstep-train: the LibTorch half of `lockstep`. `lockstep train ...`,
// `lockstep verify-resume ...` and `lockstep replay ...` exec this binary with the same arguments (see
// training_handoff.h); it presents itself as `lockstep` so help and errors read the same.
#include <CLI/CLI.hpp>

#include "cli/replay_command.h"
#include "cli/run_app.h"
#include "cli/train_command.h"
#include "cli/train_main.h"
#include "cli/verify_resume_command.h"

namespace lockstep {

namespace {
std::vector<std::string>& CommandLine() {
  static std::vector<std::string> argv;
  return argv;
}
}  // namespace

const std::vector<std::string>& TrainingCommandLine() { return CommandLine(); }

int TrainingMain(int argc, char** argv) {
  CommandLine().assign(argv, argv + argc);
  CLI::App app{"lockstep: provably reproducible training runs (training commands)", "lockstep"};
  app.set_version_flag("--version", "lockstep " LOCKSTEP_VERSION);
  app.require_subcommand(1);

  lockstep::CommandTable commands;
  commands["train"] = lockstep::AddTrainCommand(&app);
  commands["verify-resume"] = lockstep::AddVerifyResumeCommand(&app);
  commands["replay"] = lockstep::AddReplayCommand(&app);
  return lockstep::RunApp(&app, commands, argc, argv);
}

int TrainingMain(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  return TrainingMain(static_cast<int>(argv.size()), args.data());
}

}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::TrainingMain(argc, argv); }
