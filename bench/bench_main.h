// The main() of every Lockstep benchmark binary: Google Benchmark's own flags and output
// (--benchmark_filter, --benchmark_format=json for CI), then the scratch directories the
// fixtures made are removed. A fixture registers its directory when it is built, so a
// filtered run builds, and removes, only what it used.
#pragma once

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "formats/file_util.h"

namespace lockstep {
namespace bench {

// Directories to remove once the benchmarks have run.
inline std::vector<std::string>& ScratchDirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

// Runs argv (found on PATH when not a path) with stdout and stderr sent to /dev/null;
// yields the exit code, -1 when it could not run or was killed.
inline int RunQuietly(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  if (err != 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

inline int RunBenchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (const auto& dir : ScratchDirs()) RemoveTree(dir);
  return 0;
}

}  // namespace bench
}  // namespace lockstep
