// --verify: every byte of a checkpoint read, each file against the checksum its format
// carries, and an account of which files had one (audit.h's FileVerification); and over a
// whole run (run_checks.h).
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/run_lock.h"
#include "formats/step_log.h"
#include "formats/zip_archive.h"
#include "inspect/audit.h"
#include "inspect/layout_audit.h"
#include "inspect/run_checks.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace audit_detail {
namespace {

// Verifies files below one root, reading each DCP directory's metadata once.
class Verifier {
 public:
  Verifier(std::string root, std::string label, const ByteProgress& progress, CheckpointAudit* c)
      : root_(std::move(root)), label_(std::move(label)), progress_(progress), c_(c) {}

  // `rel`, relative to the root: verified by its checksum, else read whole.
  void File(const std::string& rel) {
    const std::string path = root_ + "/" + rel;
    bool checksummed = false;
    Status st;
    if (const DcpCheckpoint* dcp = DcpOf(fs::path(path).parent_path().string()); dcp && HasSuffix(rel, dcp::kDataExt)) {
      st = VerifyDcpFile(*dcp, fs::path(rel).filename().string(), progress_, &checksummed);
    } else if (LooksLikeZip(path)) {
      st = VerifyZip(path, progress_);
      checksummed = true;
    } else {
      std::string hex;
      st = FileXxh3Hex(path, &hex, nullptr, progress_);  // what the disk cannot give back is found
    }
    if (!st.ok()) return Fail(c_, kCorrupt, st.message());
    Record(rel, checksummed);
  }

  void Record(const std::string& rel, bool checksummed) {
    const std::string shown = label_.empty() ? rel : rel.empty() ? label_ : label_ + "/" + rel;
    (checksummed ? c_->verification.verified : c_->verification.unverifiable).push_back(shown);
  }

 private:
  const DcpCheckpoint* DcpOf(const std::string& dir) {
    auto it = dcp_.find(dir);
    if (it == dcp_.end()) {
      std::unique_ptr<DcpCheckpoint> read(new DcpCheckpoint);
      if (!IsDcpDirectory(dir) || !ReadDcpMetadata(dir, read.get()).ok()) read.reset();
      it = dcp_.emplace(dir, std::move(read)).first;
    }
    return it->second.get();
  }

  std::string root_, label_;
  const ByteProgress& progress_;
  CheckpointAudit* c_;
  std::map<std::string, std::unique_ptr<DcpCheckpoint>> dcp_;
};

}  // namespace
}  // namespace audit_detail

using namespace audit_detail;

void VerifyCheckpoint(const std::string& path, const ByteProgress& progress, CheckpointAudit* c) {
  c->verified = true;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {                                // a Lightning .ckpt or a torch.save file
    const std::string dir = fs::path(path).parent_path().string();  // "" for a bare name in this directory
    Verifier v(dir.empty() ? "." : dir, fs::path(c->name).parent_path().string(), progress, c);
    return v.File(fs::path(path).filename().string());
  }
  Verifier v(path, c->name, progress, c);
  std::set<std::string> by_manifest;
  if (c->layout == layout::kLockstep) {
    Manifest manifest;
    const Status st = ValidateCheckpoint(path, VerifyMode::kChecksums, &manifest, progress);
    if (!st.ok()) return Fail(c, kCorrupt, st.message());
    for (const auto& f : manifest.files) by_manifest.insert(f.path);
  }
  for (const auto& rel : FilesBelow(path)) {
    if (by_manifest.count(rel)) {
      v.Record(rel, true);
    } else {
      v.File(rel);
    }
  }
}

Status FindCorruption(const std::string& path) {
  CheckpointAudit c = AuditCheckpoint(path, /*in_run=*/true);
  if (c.status == kComplete || c.status == kNotChecked) VerifyCheckpoint(path, {}, &c);
  if (c.status != kCorrupt || c.problems.empty()) return Status::Ok();
  return Status::Corruption(c.problems.front());
}

namespace audit_detail {

// --verify over the checkpoints the cheap pass found whole; progress runs over the whole
// run, as the cheap pass gave every checkpoint's size.
void VerifyCheckpoints(const std::string& run_dir, const AuditOptions& options, AuditReport* report) {
  uint64_t total = 0, done = 0;
  const auto whole = [](const CheckpointAudit& c) { return c.status == kComplete || c.status == kNotChecked; };
  for (const auto& c : report->checkpoints) total += whole(c) ? c.bytes : 0;
  for (auto& c : report->checkpoints) {
    if (!whole(c)) continue;
    ByteProgress progress;
    if (options.progress) progress = [&](uint64_t bytes) { options.progress(done += bytes, total, c.name); };
    VerifyCheckpoint(run_dir + "/" + c.name, progress, &c);
    c.resumable = c.resumable && c.status == kComplete;
  }
}

// The files of the run outside its checkpoints (the step log, results, the final model):
// each read whole and checked by the checksum its format carries.
void VerifyRunFiles(const std::string& run_dir, const StepLogContents* log, AuditReport* report) {
  std::vector<std::string> inside;
  for (const auto& c : report->checkpoints) inside.push_back(c.name);
  for (const auto& rel : FilesBelow(run_dir)) {
    const bool in_checkpoint = std::any_of(inside.begin(), inside.end(), [&](const std::string& name) {
      return rel == name || rel.rfind(name + "/", 0) == 0;
    });
    if (in_checkpoint || IsCheckpointLeftover(rel.substr(0, rel.find('/')))) continue;
    if (rel == kRunLockFile) continue;            // the writers' lock: it names who held it, no training state
    if (rel == kStepLogFile && log != nullptr) {  // read whole by the audit: zstd checked every frame's checksum
      (log->frames_checksummed && !log->truncated_tail ? report->verification.verified
                                                       : report->verification.unverifiable)
          .push_back(rel);
      continue;
    }
    CheckpointAudit one;
    one.name = rel;
    one.status = kComplete;
    VerifyCheckpoint(run_dir + "/" + rel, {}, &one);
    for (const auto& p : one.problems) report->problems.push_back(p);
    for (const auto& v : one.verification.verified) report->verification.verified.push_back(v);
    for (const auto& v : one.verification.unverifiable) report->verification.unverifiable.push_back(v);
  }
}

}  // namespace audit_detail
}  // namespace lockstep
