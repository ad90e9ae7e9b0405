// A torch.save archive (optimizer.pt, rng_state.pth, scheduler.pt, pytorch_model.bin,
// training_args.bin, DeepSpeed's shards) read as data: the zip's data.pkl is evaluated by
// formats/pickle_data.h, never executed, and each tensor it rebuilds
// (torch._utils._rebuild_tensor_v2 over a persistent storage) becomes a named view of a
// storage entry. Names are the tensor's place in the pickled structure, so two archives
// with the same keys in another order name the same tensors alike. No LibTorch here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/tensor_file.h"
#include "formats/zip_archive.h"

namespace lockstep {

struct TorchTensor {
  std::string name;             // "state.0.exp_avg", "fc1.weight", "cpu" (rng_state.pth)
  std::string storage;          // the storage's key: the archive entry .../data/<storage>
  std::string storage_type;     // "torch.FloatStorage", ...
  DType dtype = DType::kUInt8;  // kUInt8 for a storage type not known (compared as bytes)
  int64_t storage_offset = 0;   // in elements
  std::vector<int64_t> shape, stride;
  int64_t numel() const;
  uint64_t bytes() const { return static_cast<uint64_t>(numel()) * DTypeSize(dtype); }
};

struct TorchArchive {
  std::string path;
  std::vector<ZipEntry> entries;
  std::string pickle_entry;          // ".../data.pkl"
  std::vector<std::string> globals;  // what the pickle names ("collections.OrderedDict", ...)
  std::vector<TorchTensor> tensors;  // in pickle order
  // Every value the pickle holds, each tensor as {"tensor": NAME, "dtype": ..., "shape": [...]}.
  nlohmann::json values;
  std::map<std::string, size_t> storage_entries;  // storage key -> index in entries
};

// Reads the archive at `path`. Corruption naming the file for a zip without data.pkl, a
// pickle that does not evaluate, or a tensor whose storage entry is missing or too short
// for the view it describes.
Status ReadTorchArchive(const std::string& path, TorchArchive* out);

// The same for an archive stored at bytes [base, base + size) of `path` (DCP's .distcp).
Status ReadTorchArchiveAt(const std::string& path, uint64_t base, uint64_t size, TorchArchive* out);

// The elements of `tensor`, row-major (gathered when it is a strided view). IOError or
// Corruption naming the archive when its storage cannot be read.
Status ReadTorchTensor(const TorchArchive& archive, const TorchTensor& tensor, std::vector<uint8_t>* out);

// The settings a pickled object spells out: the scalar fields of the root object's state
// (TrainingArguments in training_args.bin) or of a root dict. Paths are not among them.
nlohmann::json PickledScalars(const TorchArchive& archive);

// True for a file name torch.save archives use (.pt, .pth, .bin, and Lightning's .ckpt).
bool IsTorchArchiveName(const std::string& name);

}  // namespace lockstep
