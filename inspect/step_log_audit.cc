// What the step log says of the run (AuditRun's part, run_checks.h): the checkpoints it
// covers, the samples each epoch drew, its resumes (a world-size change, an override, the
// per-rank state a smaller job left unread, a deliberately broken resume).
#include <algorithm>
#include <set>

#include "formats/checkpoint_layout.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/step_record.h"
#include "inspect/coverage.h"
#include "inspect/run_checks.h"
#include "inspect/step_log_view.h"
#include "inspect/unrestored_state.h"

using nlohmann::json;

namespace lockstep {
namespace audit_detail {
namespace {

// A resume the step log records as made with --fault-inject: a deliberately broken resume,
// for testing Lockstep, never the run it claims to continue.
void AuditFaultInjection(const std::string& log_path, const StepLogContents& log, AuditReport* report) {
  for (const auto& e : log.events) {
    const json injected = e.record.value(event_key::kFaultInjected, json());
    if (injected.is_null() || injected == false || injected == "") continue;
    const json after = e.record.value(event_key::kAfterStep, json());
    report->problems.push_back(log_path + ": the resume after step " + (after.is_number() ? DumpJson(after) : "?") +
                               " was made with --fault-inject " +
                               (injected.is_string() ? injected.get<std::string>() : DumpJson(injected)) +
                               " (a deliberately broken resume, for testing): the run after it is not this run");
  }
}

}  // namespace

// The step log covers every checkpoint of the run (of any layout, a script's own included),
// and which samples each epoch saw. Returns the log (`already_read`, or read into
// `*read_here`), or null when there is none or it does not read.
const StepLogContents* AuditStepLog(const std::string& run_dir, const StepLogContents* already_read,
                                    StepLogContents* read_here, AuditReport* report) {
  const std::string log_path = run_dir + "/" + kStepLogFile;
  if (!Exists(log_path)) {
    if (std::any_of(report->checkpoints.begin(), report->checkpoints.end(),
                    [](const CheckpointAudit& c) { return c.layout == layout::kLockstep; })) {
      report->problems.push_back(log_path + ": missing, so no checkpoint's steps are recorded");
    }
    return nullptr;
  }
  if (already_read == nullptr) {
    const Status st = ReadStepLog(log_path, read_here);
    if (!st.ok()) {
      report->problems.push_back(st.message());
      return nullptr;
    }
  }
  const StepLogContents& log = already_read != nullptr ? *already_read : *read_here;
  std::set<int64_t> steps;
  for (const auto& r : log.records) steps.insert(r.step);
  const int64_t logged_from = log.header.value("resumed_from_step", int64_t{0});
  json uncovered = json::array();
  for (const auto& c : report->checkpoints) {
    if (c.step > logged_from && !steps.count(c.step)) {
      uncovered.push_back(c.step);
      report->problems.push_back(log_path + ": no record of step " + std::to_string(c.step) + " (" + c.name + ")");
    }
  }
  json world_changes = json::array();  // resumes at another world size (--world_invariant)
  for (const auto& e : log.events) {
    const json& w = e.record.value(event_key::kWorldSize, json());
    if (w.is_object()) {
      world_changes.push_back({{event_key::kAfterStep, e.record.value(event_key::kAfterStep, json())},
                               {event_key::kWorldSizeFrom, w.value(event_key::kWorldSizeFrom, json())},
                               {event_key::kWorldSizeTo, w.value(event_key::kWorldSizeTo, json())}});
    }
  }
  report->findings["step_log"] = {
      {"records", log.records.size()},        {"resumes", log.events.size()},
      {"world_size_changes", world_changes},  {"last_step", log.records.empty() ? 0 : log.records.back().step},
      {"truncated_tail", log.truncated_tail}, {"uncovered_checkpoints", uncovered}};
  if (log.truncated_tail) report->notes.push_back(log_path + ": " + log.tail_problem + " (a killed writer)");
  AuditFaultInjection(log_path, log, report);
  const CoverageReport coverage = ComputeCoverage(log, log_path);
  report->findings["coverage"] = CoverageJson(coverage);
  for (const auto& p : coverage.problems) report->problems.push_back(log_path + ": " + p);
  for (const auto& n : coverage.notes) report->notes.push_back(log_path + ": " + n);
  const json overridden = OverrideRanges(log.records);  // a resume with changed run-deciding settings
  for (const auto& range : overridden) {
    report->notes.push_back(log_path + ": steps " + range[0].dump() + ".." + range[1].dump() +
                            " are marked resume_override: resumed with changed run-deciding settings, a different run");
  }
  report->findings["override_steps"] = overridden;
  json unrestored = json::array();  // a resume by fewer ranks than saved its checkpoint
  for (const auto& u : FindUnrestoredState(run_dir, log)) {
    report->notes.push_back(log_path + ": " + UnrestoredStateText(u));
    unrestored.push_back({{event_key::kAfterStep, u.after_step},
                          {event_key::kCheckpoint, u.checkpoint},
                          {event_key::kWorldSizeFrom, u.from},
                          {event_key::kWorldSizeTo, u.to},
                          {"files", u.files},
                          {"alike", u.alike}});
  }
  report->findings["unrestored_state"] = unrestored;
  return &log;
}

}  // namespace audit_detail
}  // namespace lockstep
