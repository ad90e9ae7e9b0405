#include "formats/tensor_sources.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
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
      e.path = path;
      e.offset = x.offset;
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
    e.memory = std::make_shared<const std::vector<uint8_t>>(std::move(t.bytes));
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
    e.path = path;
    e.offset = file.data_start + t.begin;
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

// A tensor another reader assembles whole (a strided view, chunks of several ranks), held in
// memory: `read` fills its row-major bytes.
Status AppendAssembled(const std::string& name, const std::string& file, DType dtype, const std::vector<int64_t>& shape,
                       const std::function<Status(std::vector<uint8_t>*)>& read, std::vector<TensorEntry>* out) {
  TensorEntry e;
  e.name = name;
  e.file = file;
  e.dtype = dtype;
  e.shape = shape;
  auto bytes = std::make_shared<std::vector<uint8_t>>();
  LOCKSTEP_RETURN_IF_ERROR(read(bytes.get()));
  e.bytes = bytes->size();
  e.memory = std::move(bytes);
  out->push_back(std::move(e));
  return Status::Ok();
}

Status AppendTorchArchive(const std::string& path, const std::string& prefix, std::vector<TensorEntry>* out) {
  TorchArchive archive;
  LOCKSTEP_RETURN_IF_ERROR(ReadTorchArchive(path, &archive));
  for (const auto& t : archive.tensors) {
    LOCKSTEP_RETURN_IF_ERROR(AppendAssembled(
        prefix + t.name, fs::path(path).filename().string(), t.dtype, t.shape,
        [&](std::vector<uint8_t>* b) { return ReadTorchTensor(archive, t, b); }, out));
  }
  return Status::Ok();
}

}  // namespace

int64_t TensorEntry::numel() const { return static_cast<int64_t>(bytes / DTypeSize(dtype)); }

Status TensorEntry::Read(uint64_t begin, size_t n, std::vector<uint8_t>* buffer, const uint8_t** data) const {
  if (begin + n > bytes) return Status::InvalidArgument(name + ": read past the tensor's end");
  if (memory) {
    *data = memory->data() + begin;
    return Status::Ok();
  }
  if (buffer->size() < n) buffer->resize(n);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, buffer->data() + done, n - done, static_cast<off_t>(offset + begin + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      return Status::IOError(path + ": short read in tensor '" + name + "'" +
                             (r < 0 ? std::string(": ") + std::strerror(errno) : ""));
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  *data = buffer->data();
  return Status::Ok();
}

Status AppendDcpDirectory(const std::string& dir, const std::string& prefix, std::vector<TensorEntry>* out,
                          nlohmann::json* values) {
  DcpCheckpoint checkpoint;
  LOCKSTEP_RETURN_IF_ERROR(ReadDcpMetadata(dir, &checkpoint));
  const std::vector<std::string> problems = CheckDcpFiles(checkpoint);
  if (!problems.empty()) return Status::Corruption(problems.front());
  for (const auto& t : checkpoint.tensors) {
    LOCKSTEP_RETURN_IF_ERROR(AppendAssembled(
        prefix + t.fqn, fs::path(dir).filename().string(), t.dtype, t.size,
        [&](std::vector<uint8_t>* b) { return ReadDcpTensor(checkpoint, t, b); }, out));
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
