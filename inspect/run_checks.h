// Checks of a whole run that AuditRun (inspect/audit.cc) makes after each checkpoint's own:
// the files every save of a run writes, and --verify over the run. Internal to
// lockstep_inspect: the public contract is audit.h.
#pragma once

#include <string>

#include "formats/step_log.h"
#include "inspect/audit.h"

namespace lockstep {
namespace audit_detail {

// Every save of a run writes the same files: one that every other checkpoint of its series
// of names holds (there being at least one other) is missing from the one that lacks it.
void AuditSiblings(const std::string& run_dir, AuditReport* report);

// --verify over the checkpoints the cheap pass found whole (complete or not checked);
// options.progress hears of the bytes read over the whole run.
void VerifyCheckpoints(const std::string& run_dir, const AuditOptions& options, AuditReport* report);

// --verify over the run's files outside its checkpoints (the step log as `log` read it,
// results, the final model), into report->verification and report->problems.
void VerifyRunFiles(const std::string& run_dir, const StepLogContents* log, AuditReport* report);

}  // namespace audit_detail
}  // namespace lockstep
