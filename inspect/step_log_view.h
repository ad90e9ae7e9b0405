// `lockstep inspect RUN/steps.jsonl.zst`: what a step log holds, without LibTorch: its
// header, the record count, the resume events (what each changed or overrode), the steps
// marked resume_override, and a table of chosen steps and fields.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/step_record.h"

namespace lockstep {

struct StepLogViewOptions {
  int64_t first_step = 1;  // --steps A:B, inclusive; B = -1 for the last step
  int64_t last_step = -1;
  std::vector<std::string> fields = {"loss", "lr", "grad_norm"};  // columns after "step"
  int64_t max_rows = 50;  // without --steps: the first and last max_rows/2 steps
  bool range_given = false;
};

// Parses "A:B", "A:", ":B" or "A" (steps are 1-based, inclusive) into `*options`.
// InvalidArgument naming the text otherwise.
// [[first, last], ...]: the steps marked resume_override, in ranges.
nlohmann::json OverrideRanges(const std::vector<StepRecord>& records);

Status ParseStepRange(const std::string& text, StepLogViewOptions* options);

// Fills `*report` for the log at `path`: header, records, first_step, last_step,
// resumes, override_steps (as ranges), truncated_tail, fields, rows. A damaged log is
// Corruption naming the file and the offset.
Status ViewStepLog(const std::string& path, const StepLogViewOptions& options, nlohmann::json* report);

// The report as text: a summary, the resumes, then the table.
std::string StepLogViewText(const nlohmann::json& report);

}  // namespace lockstep
