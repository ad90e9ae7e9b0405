// --verify: every byte of a checkpoint read, each file against the checksum its format
// carries, and an account of which files had one (audit.h's FileVerification).
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/zip_archive.h"
#include "inspect/audit.h"
#include "inspect/layout_audit.h"

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
    if (const DcpCheckpoint* dcp = DcpOf(fs::path(path).parent_path().string()); dcp && HasSuffix(rel, ".distcp")) {
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
  if (!fs::is_directory(path, ec)) {  // a Lightning .ckpt or a torch.save file
    Verifier v(fs::path(path).parent_path().string(), fs::path(c->name).parent_path().string(), progress, c);
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

}  // namespace lockstep
