#include "formats/torch_archive.h"

#include <algorithm>
#include <cstring>

#include "formats/file_util.h"
#include "formats/pickle_data.h"

namespace lockstep {
namespace {

using Kind = PickleValue::Kind;

constexpr uint64_t kMaxPickleBytes = 256u << 20;
constexpr uint64_t kMaxStorageBytes = 1ull << 36;

// torch's storage classes as dtypes; false for one not listed.
bool DTypeOfStorage(const std::string& type, DType* d) {
  static const std::map<std::string, DType> kTypes = {
      {"torch.FloatStorage", DType::kFloat32}, {"torch.DoubleStorage", DType::kFloat64},
      {"torch.HalfStorage", DType::kFloat16},  {"torch.BFloat16Storage", DType::kBFloat16},
      {"torch.LongStorage", DType::kInt64},    {"torch.IntStorage", DType::kInt32},
      {"torch.ShortStorage", DType::kInt16},   {"torch.CharStorage", DType::kInt8},
      {"torch.ByteStorage", DType::kUInt8},    {"torch.BoolStorage", DType::kBool},
      {"torch.UntypedStorage", DType::kUInt8}};
  const auto it = kTypes.find(type);
  if (it == kTypes.end()) return false;
  *d = it->second;
  return true;
}

bool IntsOf(const PickleData& data, int32_t index, std::vector<int64_t>* out) {
  out->clear();
  if (data.at(index).kind != Kind::kTuple && data.at(index).kind != Kind::kList) return false;
  for (int32_t i : data.Items(index)) {
    if (data.at(i).kind != Kind::kInt || data.at(i).big_int) return false;
    out->push_back(data.at(i).i);
  }
  return true;
}

// A tensor from the arguments of torch._utils._rebuild_tensor_v2 (or _rebuild_tensor):
// (storage's persistent id, storage offset, size, stride, ...).
bool TensorOfRebuild(const PickleData& data, const std::vector<int32_t>& args, TorchTensor* t);

// The tensor a value rebuilds, seeing through nn.Parameter and through
// torch._tensor._rebuild_from_type_v2 (a tensor saved with Python attributes of its own, as
// DeepSpeed's flat fp32 groups are: (rebuild function, type, its arguments, state)): false
// for any other value.
bool TensorOf(const PickleData& data, int32_t index, TorchTensor* t) {
  const std::string call = data.CallName(index);
  if (call == "torch._utils._rebuild_parameter" || call == "torch._utils._rebuild_parameter_with_state") {
    const auto& args = data.Items(data.at(index).args);
    return !args.empty() && TensorOf(data, args[0], t);
  }
  if (call == "torch._tensor._rebuild_from_type_v2") {
    const auto& args = data.Items(data.at(index).args);
    if (args.size() < 3 || data.at(args[0]).kind != Kind::kGlobal) return false;
    const std::string& function = data.at(args[0]).s;
    if (function != "torch._utils._rebuild_tensor_v2" && function != "torch._utils._rebuild_tensor") return false;
    if (data.at(args[2]).kind != Kind::kTuple && data.at(args[2]).kind != Kind::kList) return false;
    return TensorOfRebuild(data, data.Items(args[2]), t);
  }
  if (call != "torch._utils._rebuild_tensor_v2" && call != "torch._utils._rebuild_tensor") return false;
  return TensorOfRebuild(data, data.Items(data.at(index).args), t);
}

bool TensorOfRebuild(const PickleData& data, const std::vector<int32_t>& args, TorchTensor* t) {
  if (args.size() < 4 || data.at(args[0]).kind != Kind::kPersistentId || data.at(args[1]).kind != Kind::kInt)
    return false;
  const auto& pid = data.Items(data.at(args[0]).items.at(0));  // ('storage', type, key, location, numel)
  if (pid.size() < 3 || data.at(pid[1]).kind != Kind::kGlobal || data.at(pid[2]).kind != Kind::kString) return false;
  t->storage_type = data.at(pid[1]).s;
  t->storage = data.at(pid[2]).s;
  if (!DTypeOfStorage(t->storage_type, &t->dtype)) t->dtype = DType::kUInt8;
  t->storage_offset = data.at(args[1]).i;
  return IntsOf(data, args[2], &t->shape) && IntsOf(data, args[3], &t->stride) && t->shape.size() == t->stride.size();
}

// The last storage byte a view touches, +1; false for a negative size, stride or offset.
bool ViewEnd(const TorchTensor& t, uint64_t* end) {
  if (t.storage_offset < 0) return false;
  uint64_t last = static_cast<uint64_t>(t.storage_offset);
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0 || t.stride[d] < 0 || t.shape[d] > (int64_t{1} << 40) || t.stride[d] > (int64_t{1} << 40))
      return false;
    if (t.shape[d] == 0) {
      *end = 0;
      return true;
    }
    last += static_cast<uint64_t>(t.shape[d] - 1) * static_cast<uint64_t>(t.stride[d]);
    if (last > (uint64_t{1} << 50)) return false;
  }
  *end = (last + 1) * DTypeSize(t.dtype);
  return true;
}

Status ReadStorage(const TorchArchive& a, const std::string& key, std::string* out) {
  const auto it = a.storage_entries.find(key);
  if (it == a.storage_entries.end()) return Status::Corruption(a.path + ": no archive entry for storage " + key);
  return ReadZipEntry(a.path, a.entries[it->second], kMaxStorageBytes, out);
}

}  // namespace

int64_t TorchTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool IsTorchArchiveName(const std::string& name) {
  return HasSuffix(name, ".pt") || HasSuffix(name, ".pth") || HasSuffix(name, ".bin") || HasSuffix(name, ".ckpt");
}

Status ReadTorchArchive(const std::string& path, TorchArchive* out) {
  return ReadTorchArchiveAt(path, 0, UINT64_MAX, out);
}

Status ReadTorchArchiveAt(const std::string& file, uint64_t base, uint64_t size, TorchArchive* out) {
  *out = TorchArchive();
  out->path = file;
  // Messages name the bytes too when the archive is one of several in its file.
  const std::string path =
      size == UINT64_MAX ? file : file + " (bytes " + std::to_string(base) + "+" + std::to_string(size) + ")";
  LOCKSTEP_RETURN_IF_ERROR(ListZipAt(file, base, size, &out->entries));
  const ZipEntry* pickle_entry = nullptr;
  for (size_t i = 0; i < out->entries.size(); ++i) {
    const ZipEntry& e = out->entries[i];
    if (HasSuffix(e.name, "/data.pkl") || e.name == "data.pkl") pickle_entry = &e;
    const size_t at = e.name.rfind("/data/");
    if (at != std::string::npos) out->storage_entries[e.name.substr(at + 6)] = i;
  }
  if (!pickle_entry) return Status::Corruption(path + ": a torch archive without data.pkl");
  out->pickle_entry = pickle_entry->name;
  std::string pickle;
  LOCKSTEP_RETURN_IF_ERROR(ReadZipEntry(file, *pickle_entry, kMaxPickleBytes, &pickle));
  PickleData data;
  const std::string origin = path + ":" + pickle_entry->name;
  LOCKSTEP_RETURN_IF_ERROR(EvaluatePickle(pickle, origin, &data));
  out->globals = data.globals();
  Status problem;
  const auto leaf = [&](int32_t index, const std::string& name, nlohmann::json* j) {
    TorchTensor t;
    if (!TensorOf(data, index, &t)) return false;
    t.name = name.empty() ? "(root)" : name;
    uint64_t end = 0;
    const auto entry = out->storage_entries.find(t.storage);
    if (problem.ok() && entry == out->storage_entries.end()) {
      problem = Status::Corruption(path + ": tensor '" + t.name + "' names storage " + t.storage +
                                   ", which the archive lacks");
    } else if (problem.ok() && (!ViewEnd(t, &end) || end > out->entries[entry->second].size)) {
      problem = Status::Corruption(path + ": tensor '" + t.name + "' reaches past the end of its storage " + t.storage +
                                   " (" + std::to_string(out->entries[entry->second].size) + " bytes)");
    }
    *j = {{"tensor", t.name}, {"dtype", DTypeName(t.dtype)}, {"shape", t.shape}};
    out->tensors.push_back(std::move(t));
    return true;
  };
  LOCKSTEP_RETURN_IF_ERROR(data.ToJson(data.root(), origin, leaf, &out->values));
  return problem;
}

Status ReadTorchTensor(const TorchArchive& archive, const TorchTensor& t, std::vector<uint8_t>* out) {
  std::string storage;
  LOCKSTEP_RETURN_IF_ERROR(ReadStorage(archive, t.storage, &storage));
  uint64_t end = 0;
  if (!ViewEnd(t, &end) || end > storage.size()) {
    return Status::Corruption(archive.path + ": tensor '" + t.name + "' reaches past the end of storage " + t.storage);
  }
  const size_t elem = DTypeSize(t.dtype);
  out->resize(static_cast<size_t>(t.bytes()));
  if (out->empty()) return Status::Ok();
  int64_t expected = 1;  // a contiguous view is one copy
  bool contiguous = true;
  for (size_t d = t.shape.size(); d-- > 0;) {
    contiguous = contiguous && (t.shape[d] == 1 || t.stride[d] == expected);
    expected *= t.shape[d];
  }
  if (contiguous) {
    std::memcpy(out->data(), storage.data() + static_cast<size_t>(t.storage_offset) * elem, out->size());
    return Status::Ok();
  }
  // A strided view: gathered element by element, in row-major order.
  std::vector<int64_t> index(t.shape.size(), 0);
  for (int64_t n = 0; n < t.numel(); ++n) {
    int64_t at = t.storage_offset;
    for (size_t d = 0; d < index.size(); ++d) at += index[d] * t.stride[d];
    std::memcpy(out->data() + static_cast<size_t>(n) * elem, storage.data() + static_cast<size_t>(at) * elem, elem);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < t.shape[d]) break;
      index[d] = 0;
    }
  }
  return Status::Ok();
}

nlohmann::json PickledScalars(const TorchArchive& archive) {
  const nlohmann::json& v = archive.values;
  const nlohmann::json* fields = &v;
  if (v.is_object() && v.contains("call") && v.contains("state")) fields = &v["state"];
  nlohmann::json out = nlohmann::json::object();
  if (!fields->is_object()) return out;
  for (const auto& [k, value] : fields->items()) {
    if (value.is_primitive()) out[k] = value;
  }
  return out;
}

}  // namespace lockstep
