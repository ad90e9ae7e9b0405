// Reading safetensors files (Hugging Face's model weights) without a framework: the header
// is parsed and checked in full before any tensor byte is trusted, and tensor data is read
// in bounded chunks, so files larger than memory stream. Format: doc/hf_formats.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "formats/status.h"

namespace lockstep {

constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;  // as the reference implementation

struct SafetensorsTensor {
  std::string name;
  std::string dtype;  // as written: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets within the data section
  uint64_t numel() const;
};

struct SafetensorsFile {
  std::string path;
  uint64_t file_bytes = 0;
  uint64_t data_start = 0;                      // 8 + header length
  std::map<std::string, std::string> metadata;  // "__metadata__"
  std::vector<SafetensorsTensor> tensors;       // in data order
};

// Bytes per element of a safetensors dtype name; 0 when unknown.
size_t SafetensorsDTypeSize(const std::string& dtype);

// Parses and validates the header of `path`: its length (within the file, at most 100 MB),
// a JSON object, known dtypes, non-negative shapes whose size matches the byte range, and
// ranges that tile the data section exactly (no overlap, no hole, nothing past the end).
// Corruption naming the file and the tensor otherwise.
Status ReadSafetensorsHeader(const std::string& path, SafetensorsFile* out);

// Calls `consume(chunk, size)` over the tensor's bytes in order, `chunk_bytes` at a time.
Status StreamSafetensorsTensor(const SafetensorsFile& file, const SafetensorsTensor& tensor,
                               const std::function<void(const uint8_t*, size_t)>& consume,
                               size_t chunk_bytes = 4u << 20);

// A sharded checkpoint's model.safetensors.index.json: tensor name -> shard file name.
// Shard names must be plain file names (no '/' or "..").
Status ReadSafetensorsIndex(const std::string& path, std::map<std::string, std::string>* weight_map);

}  // namespace lockstep
