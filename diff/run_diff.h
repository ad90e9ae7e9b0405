// Comparing two run directories (a reference and a candidate, such as a resumed run) on
// everything that must match for them to be the same run: the step logs record by record,
// the log history, the final checkpoint tensor by tensor, and the results files. Wall-clock
// fields are the only thing left out. No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/checkpoint_diff.h"
#include "diff/divergence.h"
#include "formats/status.h"

namespace lockstep {

struct RunComparison {
  int64_t reference_steps = 0;  // step records in each log
  int64_t candidate_steps = 0;
  int64_t steps_matching = 0;             // step records identical before the first difference
  std::optional<Divergence> step_log;     // first differing step record (or a missing one)
  std::optional<Divergence> log_history;  // first differing entry of trainer_state.json
  std::string final_checkpoint;           // "checkpoint-384", or "" when the run saved none
  CheckpointComparison checkpoint;        // of final_checkpoint
  int64_t results_files_compared = 0;
  std::optional<Divergence> results;              // first difference in the results files
  std::vector<nlohmann::json> candidate_resumes;  // the candidate log's "resume" records

  bool bit_exact() const { return !step_log && !log_history && checkpoint.identical() && !results; }
  // The earliest divergence by step; on a tie, in the order step log, log history, final
  // checkpoint, results: the cause before its effects.
  std::optional<Divergence> First() const;
};

// The first field in which two step records differ, checked cause before effect: sampler
// position, batch sample ids, RNG states, lr, loss bits, grad-norm bits, epoch, then any
// other field. wall_time is ignored; float fields are compared through their exact bits.
std::optional<Divergence> CompareStepRecords(const nlohmann::json& reference, const nlohmann::json& candidate);

// Compares the runs in `reference_dir` and `candidate_dir`. IO or format errors (a missing
// or corrupt step log, unreadable results) are a Status naming the file.
Status CompareRuns(const std::string& reference_dir, const std::string& candidate_dir, RunComparison* out);

nlohmann::json RunComparisonJson(const RunComparison& c);

}  // namespace lockstep
