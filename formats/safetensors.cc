#include "formats/safetensors.h"

#include "formats/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "formats/json_file.h"

namespace lockstep {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool ReadAt(int fd, uint64_t offset, void* buf, size_t n) { return ReadExactlyAt(fd, offset, buf, n, "").ok(); }

}  // namespace

uint64_t SafetensorsTensor::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

size_t SafetensorsDTypeSize(const std::string& dtype) {
  static const std::map<std::string, size_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
  const auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

namespace {

// The header's JSON text: an 8-byte little-endian length, then that many bytes.
Status ReadHeaderText(const std::string& path, SafetensorsFile* out, std::string* text) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return Status::NotFound(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) return Status::Corruption(path + ": not a regular file");
  out->file_bytes = static_cast<uint64_t>(st.st_size);
  uint8_t len_bytes[8];
  if (out->file_bytes < 8 || !ReadAt(f.fd, 0, len_bytes, 8)) {
    return Status::Corruption(path + ": too short for a safetensors header (" + std::to_string(out->file_bytes) +
                              " bytes)");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];  // little-endian
  if (header_len > kMaxSafetensorsHeader) {
    return Status::Corruption(path + ": header length " + std::to_string(header_len) + " is over the 100 MB limit");
  }
  if (header_len > out->file_bytes - 8) {
    return Status::Corruption(path + ": header length " + std::to_string(header_len) + " runs past the end of the " +
                              std::to_string(out->file_bytes) + "-byte file");
  }
  text->assign(header_len, '\0');
  if (!ReadAt(f.fd, 8, text->data(), header_len)) return Status::IOError(path + ": cannot read the header");
  if (text->empty() || (*text)[0] != '{') return Status::Corruption(path + ": header does not start with '{'");
  out->data_start = 8 + header_len;
  return Status::Ok();
}

// One tensor's entry: dtype, shape and data_offsets, consistent with each other and inside
// the `data_bytes` of the data section.
Status ParseTensorEntry(const std::string& where, const std::string& name, const nlohmann::json& entry,
                        uint64_t data_bytes, SafetensorsTensor* t) {
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets") ||
      !entry["dtype"].is_string() || !entry["shape"].is_array() || !entry["data_offsets"].is_array() ||
      entry["data_offsets"].size() != 2) {
    return Status::Corruption(where + ": needs dtype (string), shape (array) and data_offsets ([begin, end])");
  }
  t->name = name;
  t->dtype = entry["dtype"].get<std::string>();
  const size_t elem = SafetensorsDTypeSize(t->dtype);
  if (elem == 0) return Status::Corruption(where + ": unknown dtype '" + t->dtype + "'");
  for (const auto& d : entry["shape"]) {
    if (!d.is_number_unsigned()) {
      return Status::Corruption(where + ": shape " + DumpJson(entry["shape"]) + " holds " + DumpJson(d) +
                                ", not a size (a whole number of at least 0)");
    }
    if (d.get<uint64_t>() > (1ull << 48)) {
      return Status::Corruption(where + ": shape " + DumpJson(entry["shape"]) + " holds " + DumpJson(d) +
                                ", larger than any tensor a file can hold (2^48 elements)");
    }
    t->shape.push_back(d.get<int64_t>());
  }
  for (const auto& o : entry["data_offsets"]) {
    if (!o.is_number_unsigned()) return Status::Corruption(where + ": data_offsets are not byte offsets");
  }
  t->begin = entry["data_offsets"][0].get<uint64_t>();
  t->end = entry["data_offsets"][1].get<uint64_t>();
  if (t->end < t->begin) return Status::Corruption(where + ": data_offsets end before they begin");
  if (t->end > data_bytes) {
    return Status::Corruption(where + ": data_offsets [" + std::to_string(t->begin) + ", " + std::to_string(t->end) +
                              "] run past the end of the data (" + std::to_string(data_bytes) + " bytes)");
  }
  // numel * elem, guarded against overflow by the 2^48 bound on each dimension's product.
  uint64_t numel = 1;
  for (int64_t d : t->shape) {
    if (d != 0 && numel > (UINT64_MAX / 16) / static_cast<uint64_t>(d))
      return Status::Corruption(where + ": shape overflows");
    numel *= static_cast<uint64_t>(d);
  }
  if (numel * elem != t->end - t->begin) {
    return Status::Corruption(where + ": shape " + DumpJson(entry["shape"]) + " of " + t->dtype + " needs " +
                              std::to_string(numel * elem) + " bytes, data_offsets give " +
                              std::to_string(t->end - t->begin));
  }
  return Status::Ok();
}

// The tensors, by offset, tile the data section: no overlap, no hole, nothing after.
Status CheckTiling(const std::string& path, uint64_t data_bytes, std::vector<SafetensorsTensor>* tensors) {
  std::sort(tensors->begin(), tensors->end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  uint64_t expected = 0;
  for (const auto& t : *tensors) {
    if (t.begin < expected) return Status::Corruption(path + ": tensor '" + t.name + "' overlaps the tensor before it");
    if (t.begin > expected) {
      return Status::Corruption(path + ": a hole of " + std::to_string(t.begin - expected) + " bytes before tensor '" +
                                t.name + "'");
    }
    expected = t.end;
  }
  if (expected != data_bytes) {
    return Status::Corruption(path + ": " + std::to_string(data_bytes - expected) +
                              " bytes after the last tensor belong to none");
  }
  return Status::Ok();
}

}  // namespace

Status ReadSafetensorsHeader(const std::string& path, SafetensorsFile* out) {
  *out = SafetensorsFile();
  out->path = path;
  std::string text;
  LOCKSTEP_RETURN_IF_ERROR(ReadHeaderText(path, out, &text));
  nlohmann::json header;
  LOCKSTEP_RETURN_IF_ERROR(ParseJson(text, path + " (header)", &header));
  if (!header.is_object()) return Status::Corruption(path + ": header is not a JSON object");
  const uint64_t data_bytes = out->file_bytes - out->data_start;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return Status::Corruption(path + ": __metadata__ is not an object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) return Status::Corruption(path + ": __metadata__." + k + " is not a string");
        out->metadata[k] = v.get<std::string>();
      }
      continue;
    }
    SafetensorsTensor t;
    LOCKSTEP_RETURN_IF_ERROR(ParseTensorEntry(path + ": tensor '" + name + "'", name, entry, data_bytes, &t));
    out->tensors.push_back(std::move(t));
  }
  return CheckTiling(path, data_bytes, &out->tensors);
}

Status StreamSafetensorsTensor(const SafetensorsFile& file, const SafetensorsTensor& tensor,
                               const std::function<void(const uint8_t*, size_t)>& consume, size_t chunk_bytes) {
  Fd f;
  f.fd = ::open(file.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return Status::IOError(file.path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> buf(std::min<uint64_t>(chunk_bytes, std::max<uint64_t>(tensor.end - tensor.begin, 1)));
  const size_t elem = std::max<size_t>(1, SafetensorsDTypeSize(tensor.dtype));
  const size_t step = std::max(elem, buf.size() / elem * elem);  // whole elements per chunk
  for (uint64_t pos = tensor.begin; pos < tensor.end; pos += step) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(step, tensor.end - pos));
    if (!ReadAt(f.fd, file.data_start + pos, buf.data(), n)) {
      return Status::Corruption(file.path + ": tensor '" + tensor.name + "' cannot be read at byte " +
                                std::to_string(file.data_start + pos) + " (truncated?)");
    }
    consume(buf.data(), n);
  }
  return Status::Ok();
}

Status ReadSafetensorsIndex(const std::string& path, std::map<std::string, std::string>* weight_map) {
  weight_map->clear();
  nlohmann::json index;
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(path, &index));
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return Status::Corruption(path + ": no \"weight_map\" object");
  }
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) return Status::Corruption(path + ": weight_map['" + name + "'] is not a file name");
    const std::string file = shard.get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file == ".." || file == ".") {
      return Status::Corruption(path + ": weight_map['" + name + "'] names '" + file +
                                "', which is not a file beside the index");
    }
    (*weight_map)[name] = file;
  }
  return Status::Ok();
}

}  // namespace lockstep
