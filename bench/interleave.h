// `lockstep bench ab`: runs two builds' Google Benchmark binaries interleaved (A B A B ...)
// on the same machine, so slow drifts of the machine (frequency, noisy neighbours) fall on
// both alike, and gathers their repetitions for the gate (bench/gate.h). No LibTorch here.
#pragma once

#include <string>
#include <vector>

#include "bench/gate.h"
#include "formats/status.h"

namespace lockstep {

struct InterleaveOptions {
  std::string baseline, candidate;  // benchmark executables (or anything on PATH)
  int rounds = 10;                  // A B pairs; each run adds its repetitions
  std::vector<std::string> args;    // passed to both, e.g. --benchmark_filter=...
};

// Runs argv (found on PATH when not a path) with stdout and stderr sent to /dev/null;
// yields the exit code, -1 when it could not run or was killed. Shared with the suites.
int RunQuietly(const std::vector<std::string>& argv);

// Runs baseline and candidate alternately, `rounds` times each, every run writing its JSON to
// a scratch file; collects their iteration entries into `*base` and `*candidate`. A binary
// that cannot be run is NotFound; one that exits non-zero is IOError naming its exit code.
Status RunInterleaved(const InterleaveOptions& options, BenchSamples* base, BenchSamples* candidate);

}  // namespace lockstep
