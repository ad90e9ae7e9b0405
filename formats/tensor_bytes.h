// Where a tensor's row-major bytes are read from, piece by piece, in memory bounded by the
// piece and not by the tensor: a range of a file, a view of a torch.save archive's storage
// (its CRC-32 checked as the reads pass over it), and a DCP tensor assembled from its ranks'
// chunks as it is read. A diff of two 50 GB checkpoints holds two pieces at a time. No
// LibTorch here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "formats/dcp.h"
#include "formats/status.h"
#include "formats/torch_archive.h"

namespace lockstep {

// The most memory one strided view may hold while it is read: a view whose elements are
// not in storage order (a transposed matrix) is gathered from its storage's span held
// whole when the span is at most this, row by row when its rows are contiguous, and whole
// otherwise (the one case whose memory grows with the tensor).
constexpr uint64_t kMaxHeldSpanBytes = 64u << 20;

// The piece a reader of a whole tensor asks for at a time (diff, inspect).
constexpr size_t kTensorPieceBytes = 4u << 20;

class TensorBytes {
 public:
  virtual ~TensorBytes() = default;
  // Bytes [begin, begin + n) of the tensor, row-major: copied into `buffer` (resized as
  // needed) with `*data` pointing at them, or `*data` pointing into memory the source
  // holds. IOError or Corruption naming the file and the tensor.
  virtual Status Read(uint64_t begin, size_t n, std::vector<uint8_t>* buffer, const uint8_t** data) const = 0;
  // Checks what the reads so far left unchecked: each archive storage's CRC-32, reading the
  // bytes of it no read covered. Call it after the last read of every tensor of a file, not
  // after each tensor: views of one storage read in order pass over it once. Ok when
  // nothing is left; Corruption naming the file and the entry on a mismatch.
  virtual Status Finish() const { return Status::Ok(); }
};

// Feeds the `bytes` bytes of `source` to `consume` in pieces of kTensorPieceBytes (whole
// elements of `element_bytes` each). The first read's error, naming the file.
Status StreamTensorBytes(const TensorBytes& source, uint64_t bytes, size_t element_bytes,
                         const std::function<void(const uint8_t*, size_t)>& consume);

// Bytes already in memory (an HDF5 file another process parsed whole).
std::shared_ptr<const TensorBytes> MemoryBytes(std::vector<uint8_t> bytes);

// Bytes [offset, offset + size) of `path`, read as they are asked for; `what` names the
// tensor in messages.
std::shared_ptr<const TensorBytes> FileRangeBytes(const std::string& path, uint64_t offset, uint64_t size,
                                                  const std::string& what);

// The tensors of one torch.save archive as sources. Views of one storage share its
// checksum: each storage is read once when its views are read in storage order.
class TorchArchiveBytes {
 public:
  class Storage;  // one stored entry and its running checksum (tensor_bytes.cc)
  explicit TorchArchiveBytes(const TorchArchive& archive) : archive_(archive) {}
  // `tensor` (one of the archive's) as a source. Corruption naming the archive when its
  // storage entry is missing, compressed, or too short for the view.
  Status Of(const TorchTensor& tensor, std::shared_ptr<const TensorBytes>* out);

 private:
  const TorchArchive& archive_;
  std::map<std::string, std::shared_ptr<Storage>> storages_;
};

// The DCP tensor `tensor` of `checkpoint` (copied), its chunks placed as they are read; a
// range no chunk covers reads as zeros. Each chunk is opened at the first read: a chunk
// stored with a transform is InvalidArgument, one that is not its metadata's dtype and
// shape Corruption, naming the .distcp file and the bytes.
std::shared_ptr<const TensorBytes> DcpTensorBytes(const DcpCheckpoint& checkpoint, const DcpTensor& tensor);

}  // namespace lockstep
