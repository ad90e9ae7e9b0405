// A torch.distributed.checkpoint (DCP) directory read as data: what FSDP's sharded state
// dict (accelerate's pytorch_model_fsdp_0/ and optimizer_0/) and torchtitan save. Its
// .metadata is a pickled Metadata (evaluated by formats/pickle_data.h, never executed)
// that names every entry of the saved state dict: a tensor's global size, dtype and the
// chunks the ranks wrote, each at a byte range of a .distcp file (a torch.save archive per
// chunk, or the raw bytes), and the other values (a learning rate) as torch.save'd bytes.
// A tensor's bytes are read through formats/tensor_bytes.h. No LibTorch here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/tensor_file.h"

namespace lockstep {

struct DcpChunk {
  std::vector<int64_t> offsets, sizes;  // where the chunk lies in the global tensor
  std::string file;                     // the .distcp file, relative to the directory
  uint64_t offset = 0, length = 0;      // its bytes there
  std::vector<std::string> transforms;  // DCP extensions applied to the bytes (none read)
};

struct DcpTensor {
  std::string fqn;  // "model.transformer.wte.weight", "optimizer.state.model.fc.weight.exp_avg"
  DType dtype = DType::kFloat32;
  std::vector<int64_t> size;
  std::vector<DcpChunk> chunks;
  int64_t numel() const;
};

struct DcpValue {  // a non-tensor entry (BytesStorageMetadata): a torch.save'd object
  std::string fqn;
  DcpChunk where;
};

struct DcpCheckpoint {
  std::string dir;
  std::vector<DcpTensor> tensors;
  std::vector<DcpValue> values;
  std::vector<std::string> files;  // every .distcp file the metadata names, sorted
};

// True when `dir` holds a DCP checkpoint (a .metadata file).
bool IsDcpDirectory(const std::string& dir);

// Reads dir/.metadata. Corruption naming it for a pickle that is not DCP's Metadata or a
// tensor whose chunks have no storage entry; each entry's bytes are not read here.
Status ReadDcpMetadata(const std::string& dir, DcpCheckpoint* out);

// Problems with the .distcp files: a missing file, or one too short for a chunk it holds
// (a truncated shard). Empty when every chunk's bytes are there.
std::vector<std::string> CheckDcpFiles(const DcpCheckpoint& checkpoint);

// --verify of one .distcp file of `checkpoint` (a name in checkpoint.files): every chunk the
// metadata places in it read whole, each torch.save archive against its entries' CRC-32.
// `*checksummed` is false when some chunk is raw bytes, which carry no checksum. Corruption
// naming the file and the chunk; `progress` hears of the bytes read.
Status VerifyDcpFile(const DcpCheckpoint& checkpoint, const std::string& file,
                     const std::function<void(uint64_t)>& progress, bool* checksummed);

// A non-tensor entry's value, as formats/torch_archive.h's JSON.
Status ReadDcpValue(const DcpCheckpoint& checkpoint, const DcpValue& value, nlohmann::json* out);

}  // namespace lockstep
