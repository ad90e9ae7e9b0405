// The CI gate of `lockstep bench compare BASE.json NEW.json`: Google Benchmark JSON from two
// builds (repetitions as separate entries), compared benchmark by benchmark. A regression is
// alarmed only when both hold: the slowdown is significant over the repetitions (one-sided
// Mann-Whitney U, p < alpha) and larger than a minimum effect (threshold). Noise alone, on a
// shared CI machine, passes. No LibTorch here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

// Per benchmark (its run_name), the real time of every repetition, in nanoseconds.
struct BenchSamples {
  std::map<std::string, std::vector<double>> times_ns;
  // Per benchmark, every repetition's counters (items_per_second, GFLOP/s, ...).
  std::map<std::string, std::map<std::string, std::vector<double>>> counters;
  // Per benchmark, the suite binary that measured it, where known (lockstep bench ab).
  std::map<std::string, std::string> suite_of;
};

// Reads Google Benchmark's JSON (--benchmark_format=json or --benchmark_out): every entry
// with run_type "iteration" (aggregates such as mean, and skipped benchmarks, are left
// out), its real_time converted from its time_unit, and its counters. Corruption naming the
// file for anything else.
Status ReadBenchmarkJson(const std::string& path, BenchSamples* out);
// Reads a Google Benchmark JSON file as a document. Google Benchmark writes a counter's
// NaN or infinity bare (the coefficient of variation of a counter that is always 0),
// which is not JSON: such values are read as null.
Status ReadGoogleBenchmarkFile(const std::string& path, nlohmann::json* doc);
// The same for a document already parsed; `path` names it in messages.
Status BenchSamplesFromJson(const nlohmann::json& doc, const std::string& path, BenchSamples* out);

// One-sided p-value of the Mann-Whitney U test that `candidate`'s values are stochastically
// larger than `base`'s: exact for small samples without ties, the normal approximation with
// tie and continuity corrections otherwise.
double MannWhitneyGreaterP(const std::vector<double>& base, const std::vector<double>& candidate);

// The smallest p-value samples of these sizes can reach: 1 / C(m+n, m).
double SmallestReachableP(size_t m, size_t n);

// The fewest repetitions per side at which that smallest p-value is below `alpha`: 5 for
// 0.01, 4 for 0.05. A gate given fewer can never fire, so the suites run at least these.
int RepetitionsToReach(double alpha);

// The counter that carries an instruction count (bench/instructions.h): a benchmark whose
// every repetition has it is judged by instructions, not by time.
constexpr char kInstructionsCounter[] = "instructions";
// The measure of every other benchmark: its real time.
constexpr char kTimeMeasure[] = "time";

struct GateOptions {
  double alpha = 0.01;      // significance
  double threshold = 0.10;  // minimum effect: a slowdown of more than 10% of the base median
  // Instruction counts repeat to about one part in 10,000 (bench/calibrate.py), so no test
  // of significance is needed, and a small threshold is: more than 1.5% more instructions
  // is a regression, so that a 2% increase is always caught.
  double instructions_threshold = 0.015;
};

// A second, independent look at a suspect (bench ab reruns every benchmark the first
// samples called a regression, interleaved again): a regression must hold on it too, so a
// false alarm needs two in a row (alpha squared).
struct RerunVerdict {
  size_t base_n = 0, new_n = 0;
  double ratio = 1, p_slower = 1;
  bool regression = false;  // judged on the rerun's samples alone, by the same rule
};

struct BenchVerdict {
  std::string name;
  std::string measure = kTimeMeasure;  // or kInstructionsCounter
  size_t base_n = 0, new_n = 0;
  double base_median = 0, new_median = 0;  // ns, or instructions
  double ratio = 1;                        // new median / base median: above 1 is slower
  double p_slower = 1, p_faster = 1;       // time only
  // time: p_slower < alpha and ratio > 1 + threshold (and held on the rerun, when rerun);
  // instructions: ratio > 1 + instructions_threshold.
  bool regression = false;
  bool improvement = false;   // the mirror image
  bool underpowered = false;  // time: too few repetitions for p to reach alpha at all
  std::optional<RerunVerdict> rerun;
};

struct GateReport {
  std::vector<BenchVerdict> benchmarks;  // those in both files, by name
  std::vector<std::string> only_in_base, only_in_new;
  double geomean_ratio = 1;
  GateOptions options;
  bool regressed() const;
  // Benchmarks that could not be judged (underpowered): the gate says so and exits 2
  // rather than pass them silently.
  size_t unjudged() const;
  // The names a sequential rerun should take again: those called a regression by time now
  // (an instruction count repeats, so a rerun would only say it again).
  std::vector<std::string> Suspects() const;
};

// Compares every benchmark the two sample sets share. InvalidArgument when they share none
// (mismatched inputs) or when alpha or threshold are out of range.
Status CompareBenchmarks(const BenchSamples& base, const BenchSamples& candidate, const GateOptions& options,
                         GateReport* out);

// Judges each suspect again on the rerun's fresh samples (the suspects' names only): a
// regression stands only where the rerun finds it too. A suspect the rerun did not measure
// keeps its first verdict.
void ApplyRerun(const BenchSamples& base, const BenchSamples& candidate, GateReport* report);

// A --benchmark_filter that selects exactly `names` (regular-expression characters escaped).
std::string FilterForNames(const std::vector<std::string>& names);

nlohmann::json GateReportJson(const GateReport& r);
std::string GateReportText(const GateReport& r);

}  // namespace lockstep
