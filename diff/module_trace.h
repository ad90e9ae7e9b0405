// `lockstep diff trace_a.json trace_b.json`: the first module whose forward output (or the
// first parameter whose gradient) differs between two module traces of one step
// (formats/module_trace.h). That is where two runs part inside the model. No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/tensor_compare.h"
#include "formats/status.h"

namespace lockstep {

struct TraceEntryDiff {
  std::string kind;  // "forward" or "grad"
  std::string name;  // "h.1.attn", "fc1.weight"
  int64_t micro_batch = 0;
  std::string status;    // "equal", "differ", "missing_in_a", "missing_in_b", "shape_mismatch"
  uint64_t max_ulp = 0;  // over the summary and sampled elements, float32
  double max_rel = 0;
  bool within_tolerance = true;
};

struct TraceDiff {
  std::string step_a, step_b;           // the traced step of each
  std::vector<TraceEntryDiff> entries;  // in A's execution order
  std::optional<size_t> first;          // index of the first entry that differs in its bits
  std::optional<size_t> first_outside;  // ... and of the first the tolerance does not accept
  Tolerance tolerance;
  bool identical() const { return !first; }
  bool within_tolerance() const { return !first_outside; }
};

// Reads both traces (formats/module_trace.h checks them) and compares entry by entry,
// matched by (kind, name, micro_batch). Unreadable or malformed traces are a Status.
Status DiffTraceFiles(const std::string& a, const std::string& b, const Tolerance& tolerance, TraceDiff* out);

nlohmann::json TraceDiffJson(const TraceDiff& d);  // identical, within_tolerance, first_module, entries
std::string TraceDiffText(const TraceDiff& d);

}  // namespace lockstep
