// lockstep: prove that a training run, resumed or not, is the same run.
// One binary, one subcommand per capability; exit codes in cli/exit_codes.h.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <map>

#include "cli/exit_codes.h"
#include "cli/inspect_command.h"
#include "cli/train_command.h"
#include "cli/verify_resume_command.h"

int main(int argc, char** argv) {
  CLI::App app{"lockstep: provably reproducible training runs", "lockstep"};
  app.set_version_flag("--version", "lockstep 0.1.0");
  app.require_subcommand(1);

  std::map<std::string, std::function<int()>> commands;
  commands["train"] = lockstep::AddTrainCommand(&app);
  commands["inspect"] = lockstep::AddInspectCommand(&app);
  commands["verify-resume"] = lockstep::AddVerifyResumeCommand(&app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return lockstep::kExitUsage;
  }
  for (CLI::App* sub : app.get_subcommands()) return commands.at(sub->get_name())();
  return lockstep::kExitUsage;
}
