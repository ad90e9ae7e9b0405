#include "formats/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/io.h"
#include "formats/json_file.h"
#include "formats/rotation.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

constexpr char kManifestMagic[] = "LOCKSTEP-CHECKPOINT";
constexpr int kManifestVersion = 1;

bool IsSafeRelativePath(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.find('\0') != std::string::npos) return false;
  for (const auto& part : fs::path(p)) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

nlohmann::json TensorsToJson(const std::vector<TensorExtent>& tensors) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : tensors) {
    out.push_back({{"name", t.name},
                   {"dtype", DTypeName(t.dtype)},
                   {"shape", t.shape},
                   {"offset", t.offset},
                   {"bytes", t.bytes}});
  }
  return out;
}

// One "tensors" entry, checked for what a reader relies on: a known dtype, a byte count
// that is the shape's, and bytes that lie inside the file (`file_size`).
bool ParseExtent(const nlohmann::json& j, uint64_t file_size, TensorExtent* t) {
  if (!j.is_object() || !j.value("name", nlohmann::json()).is_string() ||
      !j.value("dtype", nlohmann::json()).is_string() || !j.value("shape", nlohmann::json()).is_array() ||
      !j.value("offset", nlohmann::json()).is_number_unsigned() ||
      !j.value("bytes", nlohmann::json()).is_number_unsigned()) {
    return false;
  }
  t->name = j["name"].get<std::string>();
  t->offset = j["offset"].get<uint64_t>();
  t->bytes = j["bytes"].get<uint64_t>();
  if (t->name.empty() || !DTypeFromName(j["dtype"].get<std::string>(), &t->dtype)) return false;
  uint64_t elements = 1;
  for (const auto& d : j["shape"]) {
    if (!d.is_number_unsigned() || (d.get<uint64_t>() > 0 && elements > (uint64_t{1} << 59) / d.get<uint64_t>()))
      return false;
    elements *= d.get<uint64_t>();
    t->shape.push_back(d.get<int64_t>());
  }
  if (elements * DTypeSize(t->dtype) != t->bytes) return false;
  return t->bytes == 0 || (t->offset <= file_size && t->bytes <= file_size - t->offset);
}

// A file entry's "tensors": each valid, names sorted and unique, no two overlapping.
Status ParseTensors(const nlohmann::json& j, uint64_t file_size, const std::string& where,
                    std::vector<TensorExtent>* out) {
  if (!j.is_array()) return Status::Corruption(where + ": tensors is not a list");
  out->clear();
  for (const auto& item : j) {
    TensorExtent t;
    if (!ParseExtent(item, file_size, &t))
      return Status::Corruption(where + ": a malformed tensors entry: " + item.dump());
    if (!out->empty() && !(out->back().name < t.name))
      return Status::Corruption(where + ": tensors not sorted by name, or '" + t.name + "' twice");
    out->push_back(std::move(t));
  }
  std::vector<const TensorExtent*> by_offset;
  for (const auto& t : *out) {
    if (t.bytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorExtent* a, const TensorExtent* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset)
      return Status::Corruption(where + ": tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                                "' overlap");
  }
  return Status::Ok();
}

Status ParseManifest(const nlohmann::json& j, const std::string& path, Manifest* m) {
  // Compared as JSON values: a magic of the wrong type is a mismatch, not an exception.
  if (!j.is_object() || j.value("magic", nlohmann::json()) != kManifestMagic) {
    return Status::Corruption(path + ": not a Lockstep manifest (magic '" + std::string(kManifestMagic) + "' missing)");
  }
  const auto version = j.find("format_version");
  if (version == j.end() || !version->is_number_integer()) {
    return Status::Corruption(path + ": format_version missing or not an integer");
  }
  m->format_version = version->get<int>();
  if (m->format_version != kManifestVersion) {
    return Status::Corruption(path + ": manifest format version " + std::to_string(m->format_version) +
                              " is not supported by this build (it reads version " + std::to_string(kManifestVersion) +
                              ")");
  }
  const auto step = j.find("global_step");
  const auto files = j.find("files");
  if (step == j.end() || !step->is_number_integer() || files == j.end() || !files->is_array()) {
    return Status::Corruption(path + ": global_step or files missing or of the wrong type");
  }
  m->global_step = step->get<int64_t>();
  m->files.clear();
  for (const auto& f : *files) {
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned() || !f.contains("xxh3_128") || !f["xxh3_128"].is_string()) {
      return Status::Corruption(path + ": a files entry lacks path, size or xxh3_128");
    }
    ManifestEntry e{f["path"].get<std::string>(), {f["size"].get<uint64_t>(), f["xxh3_128"].get<std::string>(), {}}};
    if (!IsSafeRelativePath(e.path)) {
      return Status::Corruption(path + ": names a file outside the checkpoint: '" + e.path + "'");
    }
    if (f.contains("tensors")) {
      LOCKSTEP_RETURN_IF_ERROR(
          ParseTensors(f["tensors"], e.content.size, path + ": '" + e.path + "'", &e.content.tensors));
    }
    m->files.push_back(std::move(e));
  }
  return Status::Ok();
}

}  // namespace

std::string CheckpointDirName(int64_t step) { return "checkpoint-" + std::to_string(step); }

bool ParseCheckpointDirName(const std::string& name, int64_t* step) {
  static const std::string kPrefix = "checkpoint-";
  if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  const std::string digits = name.substr(kPrefix.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  *step = std::stoll(digits);
  return true;
}

Status ListCheckpointDirs(const std::string& run_dir, std::vector<CheckpointDir>* out) {
  out->clear();
  std::error_code ec;
  fs::directory_iterator it(run_dir, ec);
  if (ec) return Status::IOError(run_dir + ": cannot list directory: " + ec.message());
  for (const auto& entry : it) {
    int64_t step;
    const std::string name = entry.path().filename().string();
    if (!ParseCheckpointDirName(name, &step)) continue;
    if (!entry.is_directory(ec)) continue;
    out->push_back({step, entry.path().string()});
  }
  std::sort(out->begin(), out->end(), [](const CheckpointDir& a, const CheckpointDir& b) { return a.step < b.step; });
  return Status::Ok();
}

bool ChecksumLeftToLoad(const ManifestEntry& entry, VerifyMode mode) {
  return mode == VerifyMode::kChecksumsOnLoad && !entry.content.tensors.empty();
}

Status ValidateCheckpoint(const std::string& dir, VerifyMode mode, Manifest* manifest, const ByteProgress& progress) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound(
        dir + (fs::exists(dir, ec) ? ": not a directory (a checkpoint is one)" : ": no such checkpoint directory"));
  }
  const std::string manifest_path = (fs::path(dir) / kManifestFile).string();
  nlohmann::json j;
  Status st = ReadJsonFile(manifest_path, &j);
  if (st.IsNotFound()) {
    return Status::NotFound(dir + ": no " + std::string(kManifestFile) + " (incomplete: the save never committed)");
  }
  LOCKSTEP_RETURN_IF_ERROR(st);
  Manifest m;
  LOCKSTEP_RETURN_IF_ERROR(ParseManifest(j, manifest_path, &m));
  // The manifest is the truth for identity: a renamed checkpoint is not the step it claims.
  int64_t named_step;
  if (ParseCheckpointDirName(fs::path(dir).lexically_normal().filename().string(), &named_step) &&
      named_step != m.global_step) {
    return Status::Corruption(manifest_path + ": records step " + std::to_string(m.global_step) +
                              " but the directory is named " + CheckpointDirName(named_step) +
                              " (renamed or copied by hand)");
  }
  for (const auto& e : m.files) {
    const std::string p = (fs::path(dir) / e.path).string();
    std::error_code ec;
    const auto status = fs::symlink_status(p, ec);
    if (ec || !fs::exists(status)) return Status::NotFound(p + ": listed in the manifest but missing");
    if (!fs::is_regular_file(status)) return Status::Corruption(p + ": not a regular file");
    const uint64_t size = fs::file_size(p, ec);
    if (ec || size != e.content.size) {
      return Status::Corruption(p + ": size " + std::to_string(size) + " but the manifest says " +
                                std::to_string(e.content.size));
    }
    if (mode != VerifyMode::kSizes && !ChecksumLeftToLoad(e, mode)) {
      std::string hex;
      LOCKSTEP_RETURN_IF_ERROR(FileXxh3Hex(p, &hex, nullptr, progress));
      if (hex != e.content.xxh3_128) {
        return Status::Corruption(p + ": checksum " + hex + " but the manifest says " + e.content.xxh3_128);
      }
    }
  }
  if (manifest != nullptr) *manifest = std::move(m);
  return Status::Ok();
}

bool IsCheckpointLeftover(const std::string& name) {
  return name.rfind(kStagingPrefix, 0) == 0 || name.rfind(kDeletingPrefix, 0) == 0;
}

Status RemoveCheckpoint(const std::string& dir) {
  const fs::path path(dir);
  int64_t step = 0;
  ParseCheckpointDirName(path.filename().string(), &step);
  const std::string doomed =
      (path.parent_path() / (kDeletingPrefix + std::to_string(step) + "-" + std::to_string(::getpid()))).string();
  LOCKSTEP_RETURN_IF_ERROR(RemoveTree(doomed));  // one of ours from an earlier failed delete
  LOCKSTEP_RETURN_IF_ERROR(RenameDurably(dir, doomed));
  return RemoveTree(doomed);
}

Status RotateCheckpoints(const std::string& run_dir, int64_t save_total_limit, int64_t best_step) {
  if (save_total_limit <= 0) return Status::Ok();
  std::vector<CheckpointDir> dirs;
  LOCKSTEP_RETURN_IF_ERROR(ListCheckpointDirs(run_dir, &dirs));
  std::vector<int64_t> steps;
  for (const auto& d : dirs) {
    if (ValidateCheckpoint(d.path, VerifyMode::kSizes).ok()) steps.push_back(d.step);
  }
  for (int64_t s : CheckpointsToDelete(steps, best_step, save_total_limit)) {
    LOCKSTEP_RETURN_IF_ERROR(RemoveCheckpoint((fs::path(run_dir) / CheckpointDirName(s)).string()));
  }
  return Status::Ok();
}

bool IsLockstepCheckpoint(const std::string& dir) {
  nlohmann::json j;
  return ReadJsonFile((fs::path(dir) / kManifestFile).string(), &j).ok() && j.is_object() &&
         j.value("magic", nlohmann::json()) == kManifestMagic;
}

Status FindLatestValidCheckpoint(const std::string& run_dir, VerifyMode mode, CheckpointDir* out,
                                 std::vector<SkippedCheckpoint>* skipped) {
  skipped->clear();
  std::vector<CheckpointDir> dirs;
  LOCKSTEP_RETURN_IF_ERROR(ListCheckpointDirs(run_dir, &dirs));
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    Status st = ValidateCheckpoint(it->path, mode);
    if (st.ok()) {
      *out = *it;
      return Status::Ok();
    }
    skipped->push_back({it->path, st.message()});
  }
  return Status::NotFound(run_dir + ": no valid checkpoint to resume from" +
                          (dirs.empty() ? std::string(" (no checkpoint-<step> directory)")
                                        : " (" + std::to_string(dirs.size()) + " checked, none valid)"));
}

CheckpointStaging::CheckpointStaging(std::string run_dir, int64_t step, std::string staging_dir)
    : run_dir_(std::move(run_dir)), step_(step), staging_dir_(std::move(staging_dir)) {}

CheckpointStaging::~CheckpointStaging() {
  if (!committed_) RemoveTree(staging_dir_);
}

Status CheckpointStaging::Begin(const std::string& run_dir, int64_t step, std::unique_ptr<CheckpointStaging>* out) {
  LOCKSTEP_RETURN_IF_ERROR(MakeDirs(run_dir));
  const std::string staging =
      (fs::path(run_dir) / (kStagingPrefix + std::to_string(step) + "-" + std::to_string(::getpid()))).string();
  LOCKSTEP_RETURN_IF_ERROR(RemoveTree(staging));  // a stale staging of ours from a crashed save
  LOCKSTEP_RETURN_IF_ERROR(io::Mkdir(staging));
  out->reset(new CheckpointStaging(run_dir, step, staging));
  return Status::Ok();
}

std::string CheckpointStaging::FilePath(const std::string& name) const {
  return (fs::path(staging_dir_) / name).string();
}

void CheckpointStaging::NoteWritten(const std::string& name, const WrittenFile& written) { noted_[name] = written; }

Status CheckpointStaging::Commit(std::string* final_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(staging_dir_, ec)) {
    if (!entry.is_regular_file()) {
      return Status::InvalidArgument(entry.path().string() + ": checkpoints hold regular files only");
    }
    names.push_back(entry.path().filename().string());
  }
  if (ec) return Status::IOError(staging_dir_ + ": cannot list: " + ec.message());
  std::sort(names.begin(), names.end());

  nlohmann::json files = nlohmann::json::array();
  for (const auto& name : names) {
    if (name == kManifestFile) continue;
    const auto noted = noted_.find(name);
    if (noted != noted_.end()) {
      const WrittenFile& w = noted->second;
      files.push_back({{"path", name}, {"size", w.size}, {"xxh3_128", w.xxh3_128}});
      if (!w.tensors.empty()) files.back()["tensors"] = TensorsToJson(w.tensors);
      continue;
    }
    const std::string p = FilePath(name);
    LOCKSTEP_RETURN_IF_ERROR(FsyncPath(p));
    std::string hex;
    uint64_t size = 0;
    LOCKSTEP_RETURN_IF_ERROR(FileXxh3Hex(p, &hex, &size));
    files.push_back({{"path", name}, {"size", size}, {"xxh3_128", hex}});
  }
  const nlohmann::json manifest = {
      {"magic", kManifestMagic}, {"format_version", kManifestVersion}, {"global_step", step_}, {"files", files}};
  LOCKSTEP_RETURN_IF_ERROR(WriteJsonFile(FilePath(kManifestFile), manifest));
  LOCKSTEP_RETURN_IF_ERROR(FsyncPath(staging_dir_));

  const std::string target = (fs::path(run_dir_) / CheckpointDirName(step_)).string();
  if (fs::exists(target, ec)) {
    // Replace an older save of the same step without a moment where neither exists.
    LOCKSTEP_RETURN_IF_ERROR(io::Exchange(staging_dir_, target));
    committed_ = true;
    LOCKSTEP_RETURN_IF_ERROR(FsyncPath(run_dir_));
    LOCKSTEP_RETURN_IF_ERROR(RemoveTree(staging_dir_));  // now holds the replaced checkpoint
  } else {
    LOCKSTEP_RETURN_IF_ERROR(RenameDurably(staging_dir_, target));
    committed_ = true;
  }
  if (final_dir != nullptr) *final_dir = target;
  return Status::Ok();
}

}  // namespace lockstep
