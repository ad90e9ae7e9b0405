#include "formats/dcp.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "formats/file_names.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/pickle_data.h"
#include "formats/torch_archive.h"
#include "formats/zip_archive.h"

using nlohmann::json;

namespace lockstep {
namespace {

using dcp::kMetadataFile;
constexpr uint64_t kMaxMetadataBytes = 256u << 20;

const json& Field(const json& j, const char* key) { return FieldOrNull(j, key); }

// A pickled object's fields: its BUILD state (a dict), or {} for anything else.
const json& State(const json& object) { return Field(object, "state"); }

// torch.Size([...]) as evaluated: {"call": "torch.Size", "args": [[...]]}.
bool SizeOf(const json& size, std::vector<int64_t>* out) {
  const json& args = Field(size, "args");
  if (!args.is_array() || args.empty() || !args[0].is_array()) return false;
  out->clear();
  for (const auto& d : args[0]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) return false;
    out->push_back(d.get<int64_t>());
  }
  return true;
}

// The dtype a TensorProperties names: its state is a tuple (dtype, layout, ...) in torch 2.x,
// a dict {"dtype": ...} in earlier ones.
bool DTypeOfProperties(const json& properties, DType* out) {
  const json& st = State(properties);
  const json& dtype = st.is_array() && !st.empty() ? st[0] : Field(st, "dtype");
  const json& name = Field(dtype, "global");
  if (!name.is_string() || name.get<std::string>().rfind("torch.", 0) != 0) return false;
  return DTypeFromName(name.get<std::string>().substr(6), out);
}

bool ChunkOf(const json& chunk, DcpChunk* out) {
  return SizeOf(Field(State(chunk), "offsets"), &out->offsets) && SizeOf(Field(State(chunk), "sizes"), &out->sizes);
}

uint64_t Product(const std::vector<int64_t>& dims) {
  uint64_t n = 1;
  for (int64_t d : dims) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t FileSize(const std::string& path, bool* exists) {
  struct stat st;
  *exists = ::stat(path.c_str(), &st) == 0;
  return *exists ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

int64_t DcpTensor::numel() const { return static_cast<int64_t>(Product(size)); }

bool IsDcpDirectory(const std::string& dir) {
  bool exists = false;
  FileSize(dir + "/" + kMetadataFile, &exists);
  return exists;
}

static Status ReadDcpMetadataUnchecked(const std::string& dir, DcpCheckpoint* out);

// The modules whose classes a DCP .metadata pickle names (torch 2.x's Metadata, its storage
// and tensor properties, torch.Size and dtypes; pathlib and collections for paths and dicts).
static const char* const kMetadataModules[] = {"torch.",    "pathlib.", "collections.",
                                               "builtins.", "copyreg.", "_codecs."};

// A value of the wrong JSON type anywhere in the metadata is corruption, never an exception.
Status ReadDcpMetadata(const std::string& dir, DcpCheckpoint* out) {
  return CorruptionOnJsonTypeError(dir + "/" + kMetadataFile, [&] { return ReadDcpMetadataUnchecked(dir, out); });
}

static Status ReadDcpMetadataUnchecked(const std::string& dir, DcpCheckpoint* out) {
  *out = DcpCheckpoint();
  out->dir = dir;
  const std::string path = dir + "/" + kMetadataFile;
  std::string bytes;
  LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(path, &bytes, kMaxMetadataBytes));
  PickleData data;
  LOCKSTEP_RETURN_IF_ERROR(EvaluatePickle(bytes, path, &data));
  // Every class DCP's metadata names is torch's or the standard library's: a changed byte in
  // a module name ("tnrch.distributed...") leaves a file torch cannot unpickle.
  for (const auto& global : data.globals()) {
    const bool known = std::any_of(std::begin(kMetadataModules), std::end(kMetadataModules),
                                   [&](const char* m) { return global.rfind(m, 0) == 0; });
    if (!known) {
      return Status::Corruption(path + ": names '" + global +
                                "', which is no module torch.distributed.checkpoint writes (torch cannot load it)");
    }
  }
  json metadata;
  LOCKSTEP_RETURN_IF_ERROR(data.ToJson(data.root(), path, nullptr, &metadata));
  const json& entries = Field(State(metadata), "state_dict_metadata");
  const json& storage = Field(State(metadata), "storage_data");
  if (!entries.is_object() || !storage.is_object()) {
    return Status::Corruption(path + ": not a torch.distributed.checkpoint Metadata (no state_dict_metadata)");
  }
  // storage_data: MetadataIndex(fqn, offset, index) -> _StorageInfo(relative_path, offset, length).
  std::map<std::pair<std::string, std::vector<int64_t>>, DcpChunk> where;
  std::set<std::string> files;
  for (const auto& [key, info] : storage.items()) {
    const json index = json::parse(key, nullptr, false);
    const json& fqn = Field(State(index), "fqn");
    DcpChunk c;
    const json& st = State(info);
    const auto whole = [](const json& j) { return j.is_number_integer() && j.get<int64_t>() >= 0; };
    if (!fqn.is_string() || !Field(st, "relative_path").is_string() || !whole(Field(st, "offset")) ||
        !whole(Field(st, "length"))) {
      return Status::Corruption(path + ": a storage_data entry is not (fqn, offset) -> (file, offset, length)");
    }
    std::vector<int64_t> offsets;
    if (!Field(State(index), "offset").is_null()) SizeOf(Field(State(index), "offset"), &offsets);
    c.file = st["relative_path"].get<std::string>();
    if (c.file.empty() || c.file.find('/') != std::string::npos || c.file == "..") {
      return Status::Corruption(path + ": storage file '" + c.file + "' is not a file of this directory");
    }
    c.offset = static_cast<uint64_t>(st["offset"].get<int64_t>());
    c.length = static_cast<uint64_t>(st["length"].get<int64_t>());
    for (const auto& t : Field(st, "transform_descriptors").is_array() ? st["transform_descriptors"] : json::array()) {
      c.transforms.push_back(t.is_string() ? t.get<std::string>() : DumpJson(t));
    }
    files.insert(c.file);
    where[{fqn.get<std::string>(), offsets}] = c;
  }
  out->files.assign(files.begin(), files.end());
  for (const auto& [fqn, entry] : entries.items()) {
    const std::string kind = Field(entry, "call").is_string() ? entry["call"].get<std::string>() : "";
    if (kind.find("BytesStorageMetadata") != std::string::npos) {
      const auto it = where.find({fqn, {}});
      if (it == where.end()) return Status::Corruption(path + ": entry '" + fqn + "' has no storage");
      out->values.push_back({fqn, it->second});
      continue;
    }
    DcpTensor t;
    t.fqn = fqn;
    if (!SizeOf(Field(State(entry), "size"), &t.size) ||
        !DTypeOfProperties(Field(State(entry), "properties"), &t.dtype)) {
      return Status::Corruption(path + ": entry '" + fqn + "' is neither a tensor's metadata nor bytes");
    }
    for (const auto& chunk : Field(State(entry), "chunks")) {
      DcpChunk c;
      if (!ChunkOf(chunk, &c) || c.offsets.size() != t.size.size() || c.sizes.size() != t.size.size()) {
        return Status::Corruption(path + ": tensor '" + fqn + "' has a chunk of another rank than the tensor");
      }
      for (size_t d = 0; d < t.size.size(); ++d) {
        if (c.offsets[d] + c.sizes[d] > t.size[d]) {
          return Status::Corruption(path + ": tensor '" + fqn + "' has a chunk outside its size");
        }
      }
      const auto it = where.find({fqn, c.offsets});
      if (it == where.end()) return Status::Corruption(path + ": a chunk of tensor '" + fqn + "' has no storage entry");
      c.file = it->second.file;
      c.offset = it->second.offset;
      c.length = it->second.length;
      c.transforms = it->second.transforms;
      t.chunks.push_back(c);
    }
    out->tensors.push_back(std::move(t));
  }
  return Status::Ok();
}

std::vector<std::string> CheckDcpFiles(const DcpCheckpoint& checkpoint) {
  std::map<std::string, uint64_t> needed;  // file -> the end of the last chunk it holds
  for (const auto& t : checkpoint.tensors) {
    for (const auto& c : t.chunks) needed[c.file] = std::max(needed[c.file], c.offset + c.length);
  }
  for (const auto& v : checkpoint.values)
    needed[v.where.file] = std::max(needed[v.where.file], v.where.offset + v.where.length);
  std::vector<std::string> problems;
  for (const auto& [file, end] : needed) {
    bool exists = false;
    const uint64_t size = FileSize(checkpoint.dir + "/" + file, &exists);
    if (!exists) {
      problems.push_back(checkpoint.dir + "/" + file + ": missing (the .metadata names chunks in it)");
    } else if (size < end) {
      problems.push_back(checkpoint.dir + "/" + file + ": truncated: " + std::to_string(size) +
                         " bytes, its chunks need " + std::to_string(end));
    }
  }
  return problems;
}

Status VerifyDcpFile(const DcpCheckpoint& checkpoint, const std::string& file,
                     const std::function<void(uint64_t)>& progress, bool* checksummed) {
  *checksummed = true;
  std::vector<const DcpChunk*> chunks;
  for (const auto& t : checkpoint.tensors) {
    for (const auto& c : t.chunks) chunks.push_back(&c);
  }
  for (const auto& v : checkpoint.values) chunks.push_back(&v.where);
  const std::string path = checkpoint.dir + "/" + file;
  for (const DcpChunk* c : chunks) {
    if (c->file != file) continue;
    std::string head;
    LOCKSTEP_RETURN_IF_ERROR(ReadFileRange(path, c->offset, std::min<uint64_t>(4, c->length), &head));
    if (head == std::string("PK\x03\x04", 4) && c->transforms.empty()) {
      LOCKSTEP_RETURN_IF_ERROR(VerifyZipAt(path, c->offset, c->length, progress));
      continue;
    }
    *checksummed = false;  // raw bytes, or transformed: read, with nothing to check them by
    std::string raw;
    LOCKSTEP_RETURN_IF_ERROR(ReadFileRange(path, c->offset, c->length, &raw));
    if (progress) progress(c->length);
  }
  return Status::Ok();
}

Status ReadDcpValue(const DcpCheckpoint& checkpoint, const DcpValue& value, json* out) {
  TorchArchive archive;
  LOCKSTEP_RETURN_IF_ERROR(
      ReadTorchArchiveAt(checkpoint.dir + "/" + value.where.file, value.where.offset, value.where.length, &archive));
  *out = std::move(archive.values);
  return Status::Ok();
}

}  // namespace lockstep
