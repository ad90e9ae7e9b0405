// Checks of a whole run that AuditRun (inspect/audit.cc) makes after each checkpoint's own:
// the files every save of a run writes, its step log, and --verify over the run. Internal to
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

// The step log covers every checkpoint of the run (of any layout, a script's own included),
// which samples each epoch saw, and what its resumes did (step_log_audit.cc). Returns the log
// (`already_read`, or read into `*read_here`), or null when there is none or it does not read.
const StepLogContents* AuditStepLog(const std::string& run_dir, const StepLogContents* already_read,
                                    StepLogContents* read_here, AuditReport* report);

// --verify over the checkpoints the cheap pass found whole (complete or not checked);
// options.progress hears of the bytes read over the whole run.
void VerifyCheckpoints(const std::string& run_dir, const AuditOptions& options, AuditReport* report);

// --verify over the run's files outside its checkpoints (the step log as `log` read it,
// results, the final model), into report->verification and report->problems.
void VerifyRunFiles(const std::string& run_dir, const StepLogContents* log, AuditReport* report);

}  // namespace audit_detail
}  // namespace lockstep
