// What DiffRuns (diff/run_divergence.h) knows of each run, and the comparisons of what the
// runs left behind (checkpoints, the final model, results files), kept in run_outcomes.cc
// beside the step-by-step comparison. Internal to diff/. No LibTorch here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/run_divergence.h"
#include "formats/status.h"
#include "formats/step_log.h"

namespace lockstep {

struct RunSide {
  std::string dir, kind;
  bool has_log = false;
  StepLogContents log;
  std::map<std::string, nlohmann::json> settings, environment;  // flattened: "training_args.seed"
  nlohmann::json log_history = nlohmann::json::array();
  std::vector<int64_t> checkpoint_steps;
};

// Every checkpoint both runs hold, tensor by tensor and value by value, and the last one of
// either that the other lacks though it ran that far; one CheckpointSummary each.
Status CompareCommonCheckpoints(const RunSide& a, const RunSide& b, RunDiff* out);

// The final model an HF output directory holds at its top level, as one more row.
Status CompareTopLevelModels(const RunSide& a, const RunSide& b, RunDiff* out);

// The results files and the final trainer state; `within` when the tolerance accepts every
// difference.
Status CompareResults(const RunSide& a, const RunSide& b, RunDiff* out, bool* within);

}  // namespace lockstep
