// Tensor files: named tensors in HDF5, one dataset per tensor, framework-free.
// Format: doc/checkpoint_format.md. dtype and shape round-trip exactly, bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "formats/status.h"

namespace lockstep {

enum class DType { kFloat32, kFloat64, kFloat16, kBFloat16, kInt64, kInt32, kInt16, kInt8, kUInt8, kBool };

const char* DTypeName(DType dtype);                         // "float32", "bfloat16", ...
bool DTypeFromName(const std::string& name, DType* dtype);  // inverse of DTypeName
size_t DTypeSize(DType dtype);                              // bytes per element

// A tensor as plain bytes: row-major (C order), little-endian, `shape` empty for a scalar.
struct TensorData {
  std::string name;  // '/' separates groups, e.g. "exp_avg/fc1.weight"
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel() * DTypeSize(dtype) bytes

  int64_t numel() const;
};

// A tensor's bytes where they already lie (a CPU tensor's memory, a TensorData's vector):
// what WriteTensorFile writes from, with no staging copy. `data` must stay valid and
// unchanged until the write returns.
struct TensorView {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t bytes = 0;  // numel * DTypeSize(dtype)
};

// Where one tensor's bytes lie in its file, raw: a contiguous, unfiltered dataset in the
// dtype's little-endian layout, as WriteTensorFile writes every tensor.
struct TensorExtent {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // in the file
  uint64_t bytes = 0;   // numel * DTypeSize(dtype)
};

// What a durable write put on disk: its size and XXH3-128 digest, hashed from memory as the
// bytes were written, and where each tensor went (a checkpoint's manifest takes them, so
// nothing is read back, and a load can read and verify the file in one pass).
struct WrittenFile {
  uint64_t size = 0;
  std::string xxh3_128;
  std::vector<TensorExtent> tensors;  // every tensor, sorted by name; offset 0 when empty
};

// Writes `tensors` to a new HDF5 file at `path` (replacing any file there), durably, and
// stores its size and digest in `*written` when non-null. HDF5 lays out only the metadata,
// in memory, with every dataset's storage allocated; each tensor's bytes then go from
// `data` straight to the file (formats/io.h writes, one fsync). Names must be unique,
// non-empty and free of empty path components; each byte count must match dtype and shape.
Status WriteTensorFile(const std::string& path, const std::vector<TensorView>& tensors, WrittenFile* written = nullptr);
Status WriteTensorFile(const std::string& path, const std::vector<TensorData>& tensors, WrittenFile* written = nullptr);

// Reads every tensor of the Lockstep tensor file at `path`, sorted by name. Checks the
// magic and version, and that each dataset's size agrees with its dtype and shape.
Status ReadTensorFile(const std::string& path, std::vector<TensorData>* tensors);

// The same for a file's bytes already in memory; `path` names it in messages.
//
// Trust: libhdf5 (1.10) is not safe on hostile bytes; fuzzing found a heap overflow inside
// it on a malformed object header. These two are for files whose bytes a manifest checksum
// has vouched for (a resume verifies every checksum before loading). For any other file,
// use ReadUntrustedTensorFile.
Status ReadTensorImage(const std::string& image, const std::string& path, std::vector<TensorData>* tensors);

// ReadTensorFile in a forked child process, for bytes no manifest has vouched for (inspect
// on a lone .h5 file, a checkpoint whose checksums do not match, a diff of foreign runs):
// if libhdf5 crashes on a damaged or hostile file, that is Corruption naming the file,
// never a crash of the caller. The tensors come back to the parent through a pipe.
Status ReadUntrustedTensorFile(const std::string& path, std::vector<TensorData>* tensors);

// Lists every tensor of the Lockstep tensor file at `path` with its extent, checking what
// ReadTensorFile checks but reading no tensor data. `*all_raw` is false when some dataset
// is stored otherwise (chunked, filtered, another byte order): read that file whole.
// In-process libhdf5 (see the trust note above); LocateUntrustedTensorFile isolates it.
Status LocateTensorExtents(const std::string& path, std::vector<TensorExtent>* extents, bool* all_raw);

// LocateTensorExtents in a forked child, for files no manifest vouches for: the caller then
// reads each extent itself (bounded by the file's size, checked here), at the disk's speed,
// and libhdf5 never parses the file in the caller's process.
Status LocateUntrustedTensorFile(const std::string& path, std::vector<TensorExtent>* extents, bool* all_raw);

// Reads a trusted tensor file (see the note above) straight into memory the caller owns:
// for each tensor, `place` gets its name, dtype and shape and sets `*dst` to where its bytes
// go (nullptr: skip it) or fails, e.g. when the tensor does not fit its destination. Raw
// datasets are read with pread into `*dst`; a file laid out otherwise goes through libhdf5.
using TensorPlacer = std::function<Status(const TensorExtent& tensor, void** dst)>;
Status ReadTensorFileInto(const std::string& path, const TensorPlacer& place);

// ReadTensorFileInto for a file no checksum has vouched for yet, in one pass instead of
// two (verify, then read), as a checkpoint's manifest recorded it when it was `written`: the file is read once in
// offset order, each tensor straight into where `place` puts it and everything else into scratch, and hashed on the
// way. The digest and size must match `written`; the file, vouched for only then, is parsed and must hold exactly the
// tensors `written` lists. Otherwise Corruption naming the file, and the destinations hold garbage: the caller must not
// use what it loaded. libhdf5 never reads unverified bytes.
Status ReadTensorFileVerifying(const std::string& path, const WrittenFile& written, const TensorPlacer& place);

}  // namespace lockstep
