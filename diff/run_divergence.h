// `lockstep diff A B` on two run directories (Lockstep's, Hugging Face's output_dir, or one
// of each): the settings that differ, where each run ran, the first step at which they part
// and its cause (diff/divergence.h), what followed, and the checkpoints and results they
// share. No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/divergence.h"
#include "diff/tensor_compare.h"
#include "formats/status.h"

namespace lockstep {

struct SettingDifference {
  std::string name;  // "training_args.learning_rate", "torch_version"
  nlohmann::json reference, candidate;
};

// One step after the divergence: both losses and their difference.
struct LossDelta {
  int64_t step = 0;
  double reference = 0, candidate = 0;
  double delta() const { return candidate - reference; }
};

struct Aftermath {
  std::vector<LossDelta> losses;  // the divergence step, then spaced later steps
  double max_abs_loss_delta = 0;
  Tolerance tolerance;                       // what "exceeds" means below
  std::optional<int64_t> first_step_beyond;  // the first step whose loss delta exceeds it
  std::string nearest_checkpoint;            // in the candidate, holding the state the step began from
  std::string replay_command;                // `lockstep replay ...` that re-checks the step
};

struct CheckpointSummary {
  std::string name;  // "checkpoint-200"
  bool identical = false;
  bool within_tolerance = false;
  int64_t tensors_compared = 0;
  int64_t tensors_differing = 0;
  std::optional<Divergence> first;  // its first difference, as a divergence at its step
};

struct RunDiff {
  std::string kind_a, kind_b;                  // "lockstep run", "hf run"
  std::string compared_by;                     // "step log" or "log_history"
  std::vector<SettingDifference> settings;     // run-deciding settings that differ
  std::vector<SettingDifference> environment;  // where each ran: LibTorch, device, threads
  int64_t reference_steps = 0, candidate_steps = 0, steps_matching = 0;
  int64_t compared_from_step = 1;                  // > 1 when a step log begins later (resumed elsewhere)
  std::optional<Divergence> first_divergence;      // bit for bit, cause before effect
  nlohmann::json numerics;                         // for cause numerics: ulp and relative distance
  std::optional<int64_t> first_outside_tolerance;  // the first step the tolerance does not accept
  Aftermath aftermath;
  std::vector<CheckpointSummary> checkpoints;  // those both runs hold
  std::vector<Divergence> results;             // results files and final trainer state
  std::vector<std::string> notes;              // what was seen and is not a divergence
  std::string not_compared;                    // what one run holds that could not be compared ("" for nothing)
  // When the runs part on their data: each run's sample coverage (inspect/coverage.h's JSON).
  nlohmann::json coverage_a, coverage_b;
  bool results_within = true;  // ... all accepted by the tolerance
  Tolerance tolerance;
  std::vector<nlohmann::json> candidate_resumes;  // the candidate log's "resume" records

  bool identical() const;
  // False when no step record, log entry or checkpoint was compared: then no verdict.
  bool compared_anything() const { return steps_matching > 0 || first_divergence || !checkpoints.empty(); }
  bool within_tolerance() const;  // identical, or every difference accepted by the tolerance
};

// Compares the runs in `reference` and `candidate`: the step logs record by record (else
// log_history entry by entry), every checkpoint both hold tensor by tensor (and the last one
// of either, which the other lacks though it ran that far), the final model, the results
// files and the final trainer state; wall-clock fields are the only thing left out. With
// the default Tolerance every comparison is bit for bit: what verify-resume calls. A
// missing, corrupt or foreign directory is a Status naming it; a difference between the
// runs is not an error.
Status DiffRuns(const std::string& reference, const std::string& candidate, const Tolerance& tolerance, RunDiff* out);

// The JSON contract: identical, within_tolerance, first_divergence (null or {step, cause,
// field, reference, candidate, where}), settings_differences ({name, reference, candidate}),
// environment, aftermath, checkpoints, results.
nlohmann::json RunDiffJson(const RunDiff& d);

// The verdict in one line: "IDENTICAL: 300 steps bit for bit (step log)", "DIFFERENT: the runs
// part at step 121, cause rng (rng.cpu)", or "NOTHING COMPARED: ...; no verdict".
std::string RunDiffVerdict(const RunDiff& d);

// The verdict first, then the settings, the divergence and its aftermath as tables.
std::string RunDiffText(const RunDiff& d, const std::string& reference, const std::string& candidate);

}  // namespace lockstep
