// `lockstep bench`: runs the benchmark suites (bench/*_bench, Google Benchmark binaries
// built beside `lockstep`) and merges their results into one Google Benchmark JSON
// document, which gbench's compare.py and `lockstep bench compare` read. Within a suite the
// repetitions of every benchmark are interleaved (gbench's random interleaving), so
// Lockstep and its yardstick see the same machine. No LibTorch here.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct BenchSuite {
  const char* binary;        // in the bench directory
  const char* quick_filter;  // --benchmark_filter under --quick; nullptr: not run then
  const char* measures;      // for the report
  int max_repetitions;       // heavy suites (GiB inputs, a million records) repeat less
};

// Every suite, in the order they run.
const std::vector<BenchSuite>& BenchSuites();

struct BenchRunOptions {
  bool quick = false;   // the subset that runs in under 3 minutes on 2 cores
  int repetitions = 0;  // 0: 3 under --quick, 10 otherwise
  std::string bench_dir;
  std::function<void(const std::string& line)> progress;  // one line per suite
};

// Where the suites are: $LOCKSTEP_BENCH_DIR, else the build tree's bench/ beside the
// directory of the running `lockstep`, else that directory itself. "" when none has them.
std::string FindBenchDir();

// Runs the suites and merges every result into `*merged` (the first suite's context,
// every suite's benchmarks, each marked with "lockstep_suite"). A suite that is missing is
// NotFound; one that fails is IOError naming it and its exit code.
Status RunBenchSuites(const BenchRunOptions& options, nlohmann::json* merged);

}  // namespace lockstep
