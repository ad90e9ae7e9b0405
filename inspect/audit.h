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

#include "formats/checksum.h"
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

// What --verify read of a set of files, each path relative to the audited directory.
struct FileVerification {
  // Every byte covered by a checksum the format carries, recomputed and matched: a Lockstep
  // manifest's XXH3-128, a zip archive's CRC-32 per entry (torch.save files, DCP chunks),
  // zstd's frame checksums (the step log).
  std::vector<std::string> verified;
  // Read whole, but the format carries no checksum (safetensors, JSON, a DCP .metadata): a
  // changed byte in them cannot be seen.
  std::vector<std::string> unverifiable;
  bool empty() const { return verified.empty() && unverifiable.empty(); }
};

struct CheckpointAudit {
  int64_t step = 0;    // -1 where nothing gives it (accelerate's checkpoint_<i>)
  std::string name;    // relative to the run: "checkpoint-200", "checkpoints/checkpoint_0", "....ckpt"
  std::string layout;  // formats/checkpoint_layout.h's layout:: names
  // "complete", "not checked" (a script's own format: present, but Lockstep cannot tell
  // what it should hold), "incomplete", "unreadable" (this user may not read a file) or "corrupt"
  std::string status;
  std::vector<std::string> problems;  // "path: reason"
  std::vector<std::string> notes;     // facts that are not problems ("saved with save_only_model")
  // True for a complete checkpoint a resume continues exactly: false for weights only, for
  // a format Lockstep cannot check, and for anything not complete.
  bool resumable = true;
  int64_t tensors = 0;  // model tensors its weights files hold (HF layouts)
  int64_t ranks = 0;    // the processes that saved it, as its files say; 0 when they do not
  uint64_t bytes = 0;
  bool verified = false;          // --verify read it (it was whole by the cheap checks)
  FileVerification verification;  // what --verify found of each file
};

struct AuditReport {
  std::string run_dir;
  std::vector<CheckpointAudit> checkpoints;  // in save order
  std::string latest_resumable;              // "" when none
  std::vector<std::string> problems;         // run-level, "path: reason"
  std::vector<std::string> notes;            // facts that are not problems
  nlohmann::json findings;                   // best checkpoint, rotation, step log
  bool verified = false;                     // --verify ran
  FileVerification verification;             // --verify: the files outside the checkpoints
  bool healthy() const;                      // no problem anywhere
  // The checkpoints in a format Lockstep does not know (status "not checked"): their files
  // read as data, but whether each is whole, and which one a resume continues, not known.
  size_t not_checked() const;
};

// Audits one checkpoint, a directory or a file (a Lightning .ckpt, a torch.save file), by
// its layout's rules, the cheap checks (no --verify): its status, problems and notes, and
// whether a resume from it continues the run exactly. `in_run` says a run holds it (a
// checkpoint-N directory of no known layout is then the run's own format, not a problem).
// Never fails: what cannot be read is a problem in the result.
CheckpointAudit AuditCheckpoint(const std::string& path, bool in_run = false);

// --verify of a checkpoint the cheap checks found whole (status complete or not checked):
// every byte read, each file against the checksum its format carries, into c->verification;
// what does not match is a problem. `progress` hears of the bytes read.
void VerifyCheckpoint(const std::string& path, const ByteProgress& progress, CheckpointAudit* c);

// AuditCheckpoint (as a run's) and, when it is whole by the cheap checks, VerifyCheckpoint:
// Corruption with the first problem ("path: reason") when a file fails its checksum or the
// audit calls the checkpoint corrupt; Ok otherwise (incomplete or unreadable checkpoints
// are the audit's to report, not this call's).
Status FindCorruption(const std::string& path);

// Audits `run_dir`. An unreadable directory, or one holding nothing a run leaves (no
// checkpoint-N, step log, results or HF files: InvalidArgument), is an error; damage inside
// a run is reported.
Status AuditRun(const std::string& run_dir, const AuditOptions& options, AuditReport* report);

nlohmann::json AuditReportJson(const AuditReport& report);

}  // namespace lockstep
