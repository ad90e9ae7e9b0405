// Checkpoint directories: HF naming, atomic commit, and validation by manifest.
// Format: doc/checkpoint_format.md.
//
// A checkpoint is committed by writing every file into a staging directory, fsyncing it,
// writing manifest.json last, and renaming the staging directory to checkpoint-<step>.
// A directory without a valid manifest is never taken for a checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/checksum.h"
#include "formats/file_names.h"
#include "formats/status.h"
#include "formats/tensor_file.h"

namespace lockstep {

constexpr char kStagingPrefix[] = ".staging-checkpoint-";    // a save in progress
constexpr char kDeletingPrefix[] = ".deleting-checkpoint-";  // a checkpoint being removed

// True for the names only an unfinished save or delete leaves behind (the prefixes above).
// Under the run lock, any such entry belongs to a dead process.
bool IsCheckpointLeftover(const std::string& name);

struct ManifestEntry {
  std::string path;  // relative to the checkpoint directory, no "..", no leading '/'
  // Its size and XXH3-128 (32 hex digits); for a tensor file the writer placed, also its
  // tensors (empty otherwise), so that a load can verify it as it reads it.
  WrittenFile content;
};

struct Manifest {
  int format_version = 0;
  int64_t global_step = 0;
  std::vector<ManifestEntry> files;  // sorted by path, manifest.json itself excluded
};

// "checkpoint-<step>".
std::string CheckpointDirName(int64_t step);

// True when `name` matches HF's ^checkpoint-(\d+)$; stores the number in `*step`.
bool ParseCheckpointDirName(const std::string& name, int64_t* step);

struct CheckpointDir {
  int64_t step = 0;
  std::string path;
};

// The directories of `run_dir` named like checkpoints, sorted by step (never by mtime).
// Says nothing about validity: see ValidateCheckpoint.
Status ListCheckpointDirs(const std::string& run_dir, std::vector<CheckpointDir>* out);

enum class VerifyMode {
  kSizes,      // manifest parses, every listed file exists with its size (cheap)
  kChecksums,  // ... and every checksum matches (reads every byte)
  // kChecksums but for the files whose entry lists their tensors: those are left to the
  // load, which verifies each as it reads it (LoadCheckpoint; ReadTensorFileVerifying), so
  // a resume reads its tensors once instead of twice.
  kChecksumsOnLoad,
};

// True when `mode` leaves the checksum of `entry`'s file to the load that reads it (a
// tensor file whose entry lists its tensors, under kChecksumsOnLoad).
bool ChecksumLeftToLoad(const ManifestEntry& entry, VerifyMode mode);

// OK when `dir` is a committed checkpoint under `mode`; otherwise a Status naming the
// file and the problem: NotFound when the save is incomplete (no manifest, or a listed
// file missing), Corruption when something present is wrong (a bad manifest, a size or
// checksum mismatch, or a manifest step that differs from the checkpoint-N name). Fills `*manifest` when non-null.
// Under kChecksums, `progress` (when set) hears of the bytes as they are hashed.
Status ValidateCheckpoint(const std::string& dir, VerifyMode mode, Manifest* manifest = nullptr,
                          const ByteProgress& progress = {});

// True when `dir` holds a manifest.json with Lockstep's magic, valid or not: the test for
// "this checkpoint is ours to delete" (--overwrite_output_dir never touches HF's).
bool IsLockstepCheckpoint(const std::string& dir);

struct SkippedCheckpoint {
  std::string path;
  std::string reason;  // the validation Status message
};

// The newest checkpoint of `run_dir` that validates under `mode` (HF's resume picks the
// largest step). Newer directories that fail are listed in `*skipped` with the reason.
// NotFound when no checkpoint validates.
Status FindLatestValidCheckpoint(const std::string& run_dir, VerifyMode mode, CheckpointDir* out,
                                 std::vector<SkippedCheckpoint>* skipped);

// Removes the checkpoint directory `dir` (rotation, overwrite) without a moment where a
// half-deleted checkpoint goes by its checkpoint-N name: it is first renamed, durably, to
// .deleting-checkpoint-N-<pid>, then removed. A failure leaves at most that leftover.
Status RemoveCheckpoint(const std::string& dir);

// save_total_limit rotation of `run_dir` (formats/rotation.h's rule) over its committed
// checkpoints only: a directory whose manifest does not validate is not ours to count or
// delete. `best_step` (kNoBestStep for none) is never deleted. A limit <= 0 keeps all.
Status RotateCheckpoints(const std::string& run_dir, int64_t save_total_limit, int64_t best_step);

// Writes one checkpoint through a staging directory. Destroying an uncommitted staging
// removes its directory, so an aborted save leaves nothing that looks like a checkpoint.
class CheckpointStaging {
 public:
  // Creates `run_dir`/.staging-checkpoint-<step>-<pid>/.
  static Status Begin(const std::string& run_dir, int64_t step, std::unique_ptr<CheckpointStaging>* out);
  ~CheckpointStaging();

  // Where to write the file `name` before Commit.
  std::string FilePath(const std::string& name) const;
  const std::string& staging_dir() const { return staging_dir_; }

  // Records that the staged file `name` was written durably (fsynced) with this size and
  // XXH3-128 digest, hashed from memory as it was written (and these tensors, for a tensor
  // file): Commit takes them into the manifest as they are.
  void NoteWritten(const std::string& name, const WrittenFile& written);

  // Fsyncs every staged file (but those noted above), writes manifest.json last, fsyncs, and renames the staging
  // directory to `run_dir`/checkpoint-<step>. An existing checkpoint of that step is
  // replaced atomically. Stores the final path in `*final_dir` when non-null.
  Status Commit(std::string* final_dir = nullptr);

 private:
  CheckpointStaging(std::string run_dir, int64_t step, std::string staging_dir);
  std::string run_dir_;
  int64_t step_;
  std::string staging_dir_;
  bool committed_ = false;
  std::map<std::string, WrittenFile> noted_;  // by file name
};

}  // namespace lockstep
