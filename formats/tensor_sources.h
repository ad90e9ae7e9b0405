// Named tensors, wherever they live, read without a framework: a Lockstep .h5 file, a
// safetensors file, a sharded checkpoint's model.safetensors.index.json, the storages of a
// torch.save archive (optimizer.pt, rng_state.pth) read as data, and a DCP directory's
// chunks. Listing reads no tensor's bytes; each entry is then read in pieces, so a diff
// streams checkpoints of any size in bounded memory. No LibTorch here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/tensor_bytes.h"
#include "formats/tensor_file.h"

namespace lockstep {

struct TensorEntry {
  std::string name;  // "fc1.weight", "optimizer/exp_avg/fc1.weight", "rng_state.pth/cpu"
  std::string file;  // the file it came from, for messages ("model-00001-of-00002.safetensors")
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  // Where its bytes are read from, in pieces (formats/tensor_bytes.h).
  std::shared_ptr<const TensorBytes> source;

  int64_t numel() const;
  // Bytes [begin, begin + n) of the tensor (source->Read).
  Status Read(uint64_t begin, size_t n, std::vector<uint8_t>* buffer, const uint8_t** data) const;
  // What the reads left unchecked, checked (source->Finish): call it once every tensor of
  // the file has been read.
  Status Finish() const;
};

// Appends the tensors of the file at `path` to `*out`, each name prefixed with `prefix`:
//   .h5                             every dataset (parsed in a child process, unless the
//                                   manifest of its checkpoint vouches for its bytes)
//   .safetensors                    every tensor, header validated first
//   *.safetensors.index.json        every tensor of every shard the index names
//   .pt .pth .bin                   every tensor the pickle rebuilds, named by its place in
//                                   the pickled structure ("state.0.exp_avg"), read as data
// Corruption naming the file when it cannot be read; InvalidArgument for another kind.
Status AppendTensorFile(const std::string& path, const std::string& prefix, std::vector<TensorEntry>* out);

// Appends the tensors of the DCP directory `dir` (formats/dcp.h: FSDP's sharded state
// dicts), each assembled from its ranks' chunks as it is read and named `prefix` + its fqn, and
// puts its other entries (a learning rate, a step) in `*values` by fqn.
Status AppendDcpDirectory(const std::string& dir, const std::string& prefix, std::vector<TensorEntry>* out,
                          nlohmann::json* values);

// The settings a torch archive's pickle spells out (TrainingArguments' scalar fields in
// training_args.bin, "last_epoch" in scheduler.pt), read as data, never executed.
Status ReadPickledSettings(const std::string& path, nlohmann::json* out);

// Every value a torch archive's pickle holds (formats/torch_archive.h), tensors as
// {"tensor": NAME, "dtype", "shape"}: what a diff compares beside the tensors' elements.
Status ReadPickledValues(const std::string& path, nlohmann::json* out);

}  // namespace lockstep
