#include "formats/tensor_sources.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "formats/checkpoint.h"
#include "formats/checksum.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/safetensors.h"
#include "formats/torch_archive.h"
#include "formats/zip_archive.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

bool DTypeFromSafetensors(const std::string& st, DType* d) {
  static const std::map<std::string, DType> kNames = {
      {"F64", DType::kFloat64}, {"F32", DType::kFloat32}, {"F16", DType::kFloat16}, {"BF16", DType::kBFloat16},
      {"I64", DType::kInt64},   {"I32", DType::kInt32},   {"I16", DType::kInt16},   {"I8", DType::kInt8},
      {"U8", DType::kUInt8},    {"BOOL", DType::kBool}};
  const auto it = kNames.find(st);
  if (it == kNames.end()) return false;
  *d = it->second;
  return true;
}

// True when the manifest.json beside `path` (a Lockstep checkpoint's) lists the file and
// its bytes hash to the listed digest: libhdf5 may then parse it in this process.
bool VouchedForByManifest(const std::string& path) {
  const fs::path file(path);
  Manifest manifest;
  if (!fs::exists(file.parent_path() / kManifestFile) ||
      !ValidateCheckpoint(file.parent_path().string(), VerifyMode::kSizes, &manifest).ok()) {
    return false;
  }
  const auto entry = std::find_if(manifest.files.begin(), manifest.files.end(),
                                  [&](const ManifestEntry& e) { return e.path == file.filename().string(); });
  std::string hex;
  return entry != manifest.files.end() && FileXxh3Hex(path, &hex).ok() && hex == entry->content.xxh3_128;
}

// libhdf5 reads only the file's structure, in a child process unless a checkpoint's
// manifest vouches for the file (a child costs a fork; a hash of a vouched file costs less);
// the tensor bytes are then read straight from the file like a safetensors file's. A file
// that stores some tensor otherwise (chunked, filtered) is read whole, also in a child.
Status AppendH5(const std::string& path, const std::string& prefix, std::vector<TensorEntry>* out) {
  std::vector<TensorExtent> extents;
  bool all_raw = false;
  LOCKSTEP_RETURN_IF_ERROR(VouchedForByManifest(path) ? LocateTensorExtents(path, &extents, &all_raw)
                                                      : LocateUntrustedTensorFile(path, &extents, &all_raw));
  const std::string file = fs::path(path).filename().string();
  if (all_raw) {
    for (const auto& x : extents) {
      TensorEntry e;
      e.name = prefix + x.name;
      e.file = file;
      e.dtype = x.dtype;
      e.shape = x.shape;
      e.bytes = x.bytes;
      e.source = FileRangeBytes(path, x.offset, x.bytes, e.name);
      out->push_back(std::move(e));
    }
    return Status::Ok();
  }
  std::vector<TensorData> tensors;
  LOCKSTEP_RETURN_IF_ERROR(ReadUntrustedTensorFile(path, &tensors));
  for (auto& t : tensors) {
    TensorEntry e;
    e.name = prefix + t.name;
    e.file = file;
    e.dtype = t.dtype;
    e.shape = t.shape;
    e.bytes = t.bytes.size();
    e.source = MemoryBytes(std::move(t.bytes));
    out->push_back(std::move(e));
  }
  return Status::Ok();
}

Status AppendSafetensors(const std::string& path, const std::string& prefix, const std::set<std::string>* only,
                         std::vector<TensorEntry>* out) {
  SafetensorsFile file;
  LOCKSTEP_RETURN_IF_ERROR(ReadSafetensorsHeader(path, &file));
  for (const auto& t : file.tensors) {
    if (only && !only->count(t.name)) continue;
    TensorEntry e;
    e.name = prefix + t.name;
    e.file = fs::path(path).filename().string();
    if (!DTypeFromSafetensors(t.dtype, &e.dtype)) {
      return Status::Corruption(path + ": tensor '" + t.name + "' has dtype " + t.dtype + ", which diff cannot read");
    }
    e.shape = t.shape;
    e.bytes = t.end - t.begin;
    e.source = FileRangeBytes(path, file.data_start + t.begin, e.bytes, e.name);
    out->push_back(std::move(e));
  }
  return Status::Ok();
}

Status AppendSafetensorsIndex(const std::string& path, const std::string& prefix, std::vector<TensorEntry>* out) {
  std::map<std::string, std::string> weight_map;
  LOCKSTEP_RETURN_IF_ERROR(ReadSafetensorsIndex(path, &weight_map));
  std::map<std::string, std::set<std::string>> by_shard;
  for (const auto& [name, shard] : weight_map) by_shard[shard].insert(name);
  const std::string dir = fs::path(path).parent_path().string();
  for (const auto& [shard, names] : by_shard) {
    const size_t before = out->size();
    LOCKSTEP_RETURN_IF_ERROR(AppendSafetensors((dir.empty() ? "." : dir) + "/" + shard, prefix, &names, out));
    if (out->size() - before != names.size()) {
      return Status::Corruption(path + ": shard " + shard + " lacks tensors the index assigns to it");
    }
  }
  return Status::Ok();
}

Status AppendTorchArchive(const std::string& path, const std::string& prefix, std::vector<TensorEntry>* out) {
  TorchArchive archive;
  LOCKSTEP_RETURN_IF_ERROR(ReadTorchArchive(path, &archive));
  TorchArchiveBytes sources(archive);
  for (const auto& t : archive.tensors) {
    TensorEntry e;
    e.name = prefix + t.name;
    e.file = fs::path(path).filename().string();
    e.dtype = t.dtype;
    e.shape = t.shape;
    e.bytes = t.bytes();
    LOCKSTEP_RETURN_IF_ERROR(sources.Of(t, &e.source));
    out->push_back(std::move(e));
  }
  return Status::Ok();
}

}  // namespace

int64_t TensorEntry::numel() const { return static_cast<int64_t>(bytes / DTypeSize(dtype)); }

Status TensorEntry::Read(uint64_t begin, size_t n, std::vector<uint8_t>* buffer, const uint8_t** data) const {
  if (begin > bytes || n > bytes - begin) return Status::InvalidArgument(name + ": read past the tensor's end");
  return source->Read(begin, n, buffer, data);
}

Status TensorEntry::Finish() const { return source->Finish(); }

Status AppendDcpDirectory(const std::string& dir, const std::string& prefix, std::vector<TensorEntry>* out,
                          nlohmann::json* values) {
  DcpCheckpoint checkpoint;
  LOCKSTEP_RETURN_IF_ERROR(ReadDcpMetadata(dir, &checkpoint));
  const std::vector<std::string> problems = CheckDcpFiles(checkpoint);
  if (!problems.empty()) return Status::Corruption(problems.front());
  for (const auto& t : checkpoint.tensors) {
    TensorEntry e;
    e.name = prefix + t.fqn;
    e.file = fs::path(dir).filename().string();
    e.dtype = t.dtype;
    e.shape = t.size;
    e.bytes = static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype);
    e.source = DcpTensorBytes(checkpoint, t);
    out->push_back(std::move(e));
  }
  *values = nlohmann::json::object();
  for (const auto& v : checkpoint.values) LOCKSTEP_RETURN_IF_ERROR(ReadDcpValue(checkpoint, v, &(*values)[v.fqn]));
  return Status::Ok();
}

Status ReadPickledSettings(const std::string& path, nlohmann::json* out) {
  TorchArchive archive;
  LOCKSTEP_RETURN_IF_ERROR(ReadTorchArchive(path, &archive));
  *out = PickledScalars(archive);
  return Status::Ok();
}

Status ReadPickledValues(const std::string& path, nlohmann::json* out) {
  TorchArchive archive;
  LOCKSTEP_RETURN_IF_ERROR(ReadTorchArchive(path, &archive));
  *out = std::move(archive.values);
  return Status::Ok();
}

Status AppendTensorFile(const std::string& path, const std::string& prefix, std::vector<TensorEntry>* out) {
  if (!fs::is_regular_file(path)) return Status::NotFound(path + ": no such file");
  if (HasSuffix(path, ".h5")) return AppendH5(path, prefix, out);
  if (HasSuffix(path, ".safetensors")) return AppendSafetensors(path, prefix, nullptr, out);
  if (HasSuffix(path, ".safetensors.index.json")) return AppendSafetensorsIndex(path, prefix, out);
  if (IsTorchArchiveName(path)) return AppendTorchArchive(path, prefix, out);
  return Status::InvalidArgument(path +
                                 ": not a tensor file (.h5, .safetensors, .safetensors.index.json, .pt, .pth, .bin)");
}

}  // namespace lockstep
