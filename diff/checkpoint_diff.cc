#include "diff/checkpoint_diff.h"

#include <algorithm>
#include <iterator>

#include <filesystem>
#include <map>

#include "diff/tensor_diff.h"
#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "settings/location_settings.h"

namespace fs = std::filesystem;

namespace lockstep {

nlohmann::json NormalizeRunJson(const std::string& file_name, nlohmann::json value) {
  if (!value.is_object()) return value;
  // training_args.bin holds TrainingArguments as a pickled object: its fields are its state.
  nlohmann::json* args = file_name == "training_args.json"                               ? &value
                         : file_name == hf::kTrainingArgsFile && value.contains("state") ? &value["state"]
                                                                                         : nullptr;
  if (args && args->is_object()) {
    *args = WithoutOutputLocations(std::move(*args));
  }
  if (file_name == "loop_state.json") {  // where this run's own log file ends: resume records move it
    value.erase("step_log_bytes");
    value.erase("step_log_last_frame");
    value.erase("step_log_xxh3_128");
  }
  if (file_name == kTrainerStateFile && value.contains("best_model_checkpoint") &&
      value["best_model_checkpoint"].is_string()) {
    value["best_model_checkpoint"] = fs::path(value["best_model_checkpoint"].get<std::string>()).filename().string();
  }
  return value;
}

Status CompareCheckpoints(const std::string& reference, const std::string& candidate, int64_t step,
                          CheckpointComparison* out) {
  *out = CheckpointComparison();
  CheckpointDiff diff;
  LOCKSTEP_RETURN_IF_ERROR(DiffCheckpoints(reference, candidate, Tolerance(), &diff));
  const std::string label = fs::path(reference).filename().string();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(reference, ec)) {
    out->files_compared += e.is_regular_file() && e.path().filename() != kManifestFile;
  }
  for (const auto& t : diff.tensors) {
    ++out->tensors_compared;
    const std::string where = label + "/" + (t.file_a.empty() ? t.file_b : t.file_a);
    auto differ = [&](const std::string& field, const std::string& ref, const std::string& cand) {
      out->differences.push_back(MakeDivergence(step, cause::kWeights, where, field, ref, cand));
    };
    if (t.status == "equal") {
      ++out->tensors_identical;
    } else if (t.status == "missing_in_b") {
      differ(t.name, "present", "(absent)");
    } else if (t.status == "missing_in_a") {
      differ(t.name, "(absent)", "present");
    } else if (t.status == "dtype_mismatch") {
      differ(t.name + " dtype", t.dtype_a, t.dtype_b);
    } else if (t.status == "shape_mismatch") {
      differ(t.name + " shape", DumpJson(t.shape_a), DumpJson(t.shape_b));
    } else {
      differ(t.name + "[" + std::to_string(t.first_index) + "] (" + std::to_string(t.differing) + " of " +
                 std::to_string(t.numel) + " elements differ)",
             t.first_a, t.first_b);
    }
  }
  for (const auto& s : diff.state)
    out->differences.push_back(MakeDivergence(step, cause::kState, label + "/" + s.file, s.field, s.a, s.b));
  return Status::Ok();
}

}  // namespace lockstep
