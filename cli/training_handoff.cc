#include "cli/training_handoff.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "cli/exit_codes.h"
#include "cli/training_commands.h"
#include "formats/file_util.h"
#include "process/job_env.h"

namespace lockstep {

bool IsTrainingCommand(const std::string& name) {
  return name == "train" || name == "verify-resume" || name == "replay";
}

bool AsksForHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) return true;
  }
  return false;
}

void AddTrainingCommands(CLI::App* app, CommandTable* commands, int argc, char** argv) {
  // Parsed only for help: the flags are bound to these and never read.
  static TrainFlags train;
  static VerifyFlags verify;
  static ReplayFlags replay;
  DefineReplayCommand(app, &replay);
  DefineTrainCommand(app, &train);
  DefineVerifyResumeCommand(app, &verify);
  for (const char* name : {"replay", "train", "verify-resume"}) {
    (*commands)[name] = [argc, argv] { return ExecTrainingHelper(argc, argv); };
  }
}

std::string SubcommandOf(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] != '-') return argv[i];
  }
  return "";
}

int ExecTrainingHelper(int argc, char** argv) {
  const std::string helper = ExecutableDirectory() + "/" + kTrainingHelper;
  std::vector<char*> args(argv, argv + argc);
  args[0] = const_cast<char*>(helper.c_str());
  args.push_back(nullptr);
  PreferSleepingOpenMpThreads();
  ::execv(helper.c_str(), args.data());
  const int err = errno;
  std::fprintf(stderr,
               "lockstep: cannot run %s: %s\n"
               "  `train`, `verify-resume` and `replay` link LibTorch, so they live in %s beside lockstep;"
               " rebuild (scripts/build.sh) or reinstall both binaries together.\n",
               helper.c_str(), std::strerror(err), kTrainingHelper);
  return kExitUsage;
}

}  // namespace lockstep
