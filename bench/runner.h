// `lockstep bench`: runs the benchmark suites (bench/*_bench, Google Benchmark binaries
// built beside `lockstep`) and merges their results into one Google Benchmark JSON
// document, which gbench's compare.py and `lockstep bench compare` read. Within a suite the
// repetitions of every benchmark are interleaved (gbench's random interleaving), so
// Lockstep and its yardstick see the same machine. No LibTorch here.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/gate.h"
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
  int repetitions = 0;  // 0: RepetitionsToReach(alpha 0.01) under --quick, 10 otherwise
  std::string bench_dir;
  std::function<void(const std::string& line)> progress;  // one line per suite
};

// Where the suites are: $LOCKSTEP_BENCH_DIR, else the build tree's bench/ beside the
// directory of the running `lockstep`, else that directory itself. "" when none has them.
std::string FindBenchDir();

// The bench directory of the `lockstep` executable at `lockstep` (a path, or a name found
// on PATH): <its directory>/../bench, else its directory. "" when neither has the suites.
std::string BenchDirBeside(const std::string& lockstep);

// `lockstep bench ab --baseline OLD_LOCKSTEP`: two builds' suites, interleaved.
struct AbRunOptions {
  std::string baseline_dir, candidate_dir;  // bench directories (BenchDirBeside, FindBenchDir)
  bool quick = false;                       // the quick subset, as BenchRunOptions::quick
  int rounds = 10;                          // A B pairs per suite
  std::vector<std::string> args;            // passed to every run
  // Only these benchmarks (a sequential rerun of suspects): each suite that measured one
  // of them (BenchSamples::suite_of) runs filtered to them; the others do not run.
  std::map<std::string, std::string> only;  // benchmark name -> suite
  std::function<void(const std::string& line)> progress;
};

// For each suite both builds have, runs the baseline's and the candidate's binary
// alternately (A B A B ...) `rounds` times and gathers their samples per build. A suite
// only one build has is skipped with a progress line; NotFound when none is shared.
Status RunSuitesInterleaved(const AbRunOptions& options, BenchSamples* base, BenchSamples* candidate);

// Runs the suites and merges every result into `*merged` (the first suite's context,
// every suite's benchmarks, each marked with "lockstep_suite"). A suite that is missing is
// NotFound; one that fails is IOError naming it and its exit code.
Status RunBenchSuites(const BenchRunOptions& options, nlohmann::json* merged);

}  // namespace lockstep
