// `lockstep inspect RUN_DIR`: can I trust and resume from this directory? Every checkpoint
// is listed by step with a status, and the run is checked as a whole: the latest resumable
// checkpoint, the best checkpoint's existence, the rotation policy, step-log coverage, and
// leftovers. Works on Lockstep runs and Hugging Face Trainer output alike; no framework.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/step_log.h"

namespace lockstep {

struct AuditOptions {
  // Recompute every checksum (Lockstep) or read every byte (Hugging Face), streaming.
  // Without it the checks are cheap: manifests, sizes, headers and the small JSON files.
  bool verify = false;
  // With `verify`: called as each chunk (256 KiB) is read, with the bytes verified so far
  // in the whole run, the bytes the whole verification reads (known up front, from the
  // cheap pass), and the checkpoint being read.
  std::function<void(uint64_t done, uint64_t total, const std::string& checkpoint)> progress;
  // The run's step log as the caller already read it (lockstep report): used instead of
  // reading the file again. Null: the audit reads it.
  const StepLogContents* step_log = nullptr;
};

struct CheckpointAudit {
  int64_t step = 0;
  std::string name;    // "checkpoint-200"
  std::string layout;  // "lockstep", "hf" (foreign: audited by HF's rules), or "unknown"
  std::string status;  // "complete", "incomplete", "unreadable" (this user may not read a file) or "corrupt"
  std::vector<std::string> problems;  // "path: reason"
  std::vector<std::string> notes;     // facts that are not problems ("saved with save_only_model")
  // False for a complete checkpoint a resume could not continue exactly (weights only).
  bool resumable = true;
  int64_t tensors = 0;  // model tensors its weights files hold (HF layouts)
  uint64_t bytes = 0;
};

struct AuditReport {
  std::string run_dir;
  std::vector<CheckpointAudit> checkpoints;  // by step
  std::string latest_resumable;              // "" when none
  std::vector<std::string> problems;         // run-level, "path: reason"
  std::vector<std::string> notes;            // facts that are not problems
  nlohmann::json findings;                   // best checkpoint, rotation, step log
  bool healthy() const;                      // no problem anywhere
};

// Audits one checkpoint directory by its layout's rules, the cheap checks (no --verify):
// its status, problems and notes, and whether a resume from it continues the run exactly.
// Never fails: what cannot be read is a problem in the result.
CheckpointAudit AuditCheckpoint(const std::string& dir);

// Audits `run_dir`. An unreadable directory, or one holding nothing a run leaves (no
// checkpoint-N, step log, results or HF files: InvalidArgument), is an error; damage inside
// a run is reported.
Status AuditRun(const std::string& run_dir, const AuditOptions& options, AuditReport* report);

nlohmann::json AuditReportJson(const AuditReport& report);

}  // namespace lockstep
