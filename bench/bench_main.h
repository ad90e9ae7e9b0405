// The main() of every Lockstep benchmark binary: Google Benchmark's own flags and output
// (--benchmark_filter, --benchmark_format=json for CI), then the scratch directories the
// fixtures made are removed. A fixture registers its directory when it is built, so a
// filtered run builds, and removes, only what it used.
#pragma once

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench/interleave.h"
#include "formats/file_util.h"

namespace lockstep {
namespace bench {

// Directories to remove once the benchmarks have run.
inline std::vector<std::string>& ScratchDirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

// One process runner for the suites and `lockstep bench ab` (bench/interleave.h).
using ::lockstep::RunQuietly;

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
