// Sample coverage from one run's step log: per epoch, the samples drawn, how many distinct
// ids, how many were seen more than once (a resume that restarted its epoch, a sampler
// whose epoch was reset) and how many of the dataset's ids were never seen (a resume that
// skipped too far), with the steps where repeats began. Lockstep records every step's
// sample ids, so this needs nothing but the log. No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/step_log.h"

namespace lockstep {

struct EpochCoverage {
  int64_t epoch = 0;  // 0-based
  int64_t first_step = 0, last_step = 0;
  int64_t drawn = 0;  // sample ids drawn, repeats included
  int64_t distinct = 0;
  int64_t repeated = 0;               // distinct ids drawn more than once
  std::vector<int64_t> repeat_steps;  // the steps where an id came a second time (the first 10)
  bool complete = false;              // the log holds the epoch's last step
  std::optional<int64_t> never;       // dataset ids never drawn: complete epochs of a known size
};

struct CoverageReport {
  bool known = false;  // false: the log records no sample ids (why says so)
  std::string why;
  std::optional<int64_t> dataset_size;  // header dataset.train_samples
  std::string epochs_from;              // "epoch field" (HF's epoch, counted after the step) or "plan"
  std::vector<EpochCoverage> epochs;
  std::vector<std::string> problems;  // repeats and gaps no setting explains
  std::vector<std::string> notes;     // repeats and gaps a setting explains (padding, drop_last)
};

// The coverage of `log` (its path names it in messages).
CoverageReport ComputeCoverage(const StepLogContents& log, const std::string& path);

nlohmann::json CoverageJson(const CoverageReport& report);

// A few lines from CoverageJson's form: one per epoch.
std::string CoverageText(const nlohmann::json& coverage);

}  // namespace lockstep
