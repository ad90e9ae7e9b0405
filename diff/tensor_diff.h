// `lockstep diff` on checkpoints and tensor files: tensor by tensor in each tensor's own
// dtype, then every other piece of state (optimizer, RNG, scheduler, sampler, trainer
// state) value by value. Formats mix: a Lockstep model.h5 against a Hugging Face
// model.safetensors with the same tensor names. No LibTorch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/divergence.h"
#include "diff/tensor_compare.h"
#include "formats/status.h"

namespace lockstep {

// One differing value outside the tensors: a JSON field, a pickled setting, a whole file.
struct StateDifference {
  std::string file;               // "trainer_state.json", "scheduler.pt", "rng_state.json"
  std::string field;              // "log_history[3].loss", "(file)"
  std::string a, b;               // both values, abbreviated; "(absent)" for a missing side
  bool within_tolerance = false;  // two numbers the tolerance accepts (as float32 values)
  nlohmann::json ToJson() const;
};

struct CheckpointDiff {
  std::string kind_a, kind_b;       // "lockstep checkpoint", "hf checkpoint", "tensor file"
  std::vector<TensorDiff> tensors;  // in A's order, then tensors only B has
  std::vector<StateDifference> state;
  std::vector<std::string> state_files;  // the files whose other values both sides hold, compared
  uint64_t bytes_compared = 0;           // tensor bytes read from both sides
  // False when nothing was compared (no tensor, no other value): no verdict then.
  bool compared_anything() const { return !tensors.empty() || !state_files.empty() || !state.empty(); }
  bool identical() const;
  bool within_tolerance() const;  // every tensor and every state difference within tolerance
};

// Whether `tolerance` accepts two JSON numbers, or two float32 bit strings ("0x40117f02"),
// as float32 values (diff/step_compare.h).
bool NumbersWithinTolerance(const nlohmann::json& a, const nlohmann::json& b, const Tolerance& tolerance);

// Compares `a` and `b`, each a checkpoint directory (Lockstep's or Hugging Face's) or a
// tensor file (formats in formats/tensor_sources.h). manifest.json is skipped (its checksums
// restate the files); run JSON is normalized (NormalizeRunJson). Unreadable, corrupt or
// hostile input is a Status naming the file; a difference is not an error.
Status DiffCheckpoints(const std::string& a, const std::string& b, const Tolerance& tolerance, CheckpointDiff* out);

// A tensor that is not equal, as a divergence of cause weights at `step` in `where` (its
// file): "w[2] (1 of 4 elements differ)" with both first differing values, or what is
// missing, or the dtype or shape each side has.
Divergence TensorDivergence(const TensorDiff& t, int64_t step, const std::string& where);

// The JSON a comparison looks at for `file_name`: wall-clock fields kept (FirstJsonDifference
// skips them) but output locations dropped or reduced to what identifies them, and the step
// log's byte offsets dropped (a resumed log holds a resume record, so they move).
// training_args.bin is its pickled values (formats/tensor_sources.h).
nlohmann::json NormalizeRunJson(const std::string& file_name, nlohmann::json value);

// The JSON contract: identical, within_tolerance, tolerance, tensors (every tensor, each
// {name, status, differing, first_index, max_abs, max_rel, max_ulp, ...}), state_differences.
nlohmann::json CheckpointDiffJson(const CheckpointDiff& d, const Tolerance& tolerance);

// A readable report: the verdict, then a table of the tensors that are not equal.
std::string CheckpointDiffText(const CheckpointDiff& d, const Tolerance& tolerance);

}  // namespace lockstep
