// What DiffRuns (diff/run_divergence.h) knows of each run, and the comparisons of what the
// runs left behind (checkpoints, the final model, results files), kept in run_outcomes.cc
// beside the step-by-step comparison. Internal to diff/, and read by report/ (the curves and
// tables of `lockstep report` are drawn from the same RunSide a diff compares). No LibTorch here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/run_divergence.h"
#include "formats/run_layout.h"
#include "formats/status.h"
#include "formats/step_log.h"

namespace lockstep {

struct RunSide {
  std::string dir, kind;
  bool has_log = false;
  // The reference trainer's run: its checkpoints keep HF's loss sums (loop_state.json), so a
  // resume keeps train_loss exact, and a difference in it is a divergence.
  bool keeps_loss_sums = false;
  // The reference trainer's --world_invariant: its records hold the job's micro-batches and
  // rank 0's generators, so they compare across world sizes; so do its checkpoints, by rank 0.
  bool world_invariant = false;
  StepLogContents log;
  std::map<std::string, nlohmann::json> settings, environment;  // flattened: "training_args.seed"
  nlohmann::json log_history = nlohmann::json::array();
  std::vector<int64_t> checkpoint_steps;  // its checkpoint-N directories
  // Its checkpoints of other names (accelerate's checkpoints/checkpoint_<i>, Lightning's
  // .ckpt files, DCP folders), compared by name with the other run's.
  std::vector<RunCheckpoint> named_checkpoints;
};

// Reads what `dir` holds: its step log (whole) or else HF's log_history, its settings and
// environment flattened, its checkpoint steps. NotFound or InvalidArgument naming `dir` when it
// is not a run directory; Corruption naming the damaged file (a value of the wrong JSON type
// included: never an exception).
Status LoadRunChecked(const std::string& dir, RunSide* side);

// DiffRuns (diff/run_divergence.h) on two runs already read: each is read once when a
// caller (lockstep report) also draws them.
Status DiffLoadedRuns(const RunSide& reference, const RunSide& candidate, const Tolerance& tolerance, RunDiff* out);

// Every checkpoint both runs hold, tensor by tensor and value by value, and the last one of
// either that the other lacks though it ran that far; one CheckpointSummary each.
Status CompareCommonCheckpoints(const RunSide& a, const RunSide& b, RunDiff* out);

// The final model an HF output directory holds at its top level, as one more row.
Status CompareTopLevelModels(const RunSide& a, const RunSide& b, RunDiff* out);

// The results files and the final trainer state; `within` when the tolerance accepts every
// difference.
Status CompareResults(const RunSide& a, const RunSide& b, RunDiff* out, bool* within);

// The first difference between `a` and `b` (FirstJsonDifference's) that is not resume
// bookkeeping: a Hugging Face run's train_loss, which the Trainer averages from
// _total_loss_scalar, a sum that starts at 0 in every process and is not saved in a
// checkpoint, so a resumed run's covers only the steps it trained itself. Those differences
// go to out->notes, named by `where`, once each. Where both runs keep their loss sums
// (RunSide::keeps_loss_sums), train_loss is compared as any value is.
std::optional<JsonDifference> FirstDifferenceBesideBookkeeping(const nlohmann::json& a, const nlohmann::json& b,
                                                               const std::string& where, bool keeps_loss_sums,
                                                               RunDiff* out);

}  // namespace lockstep
