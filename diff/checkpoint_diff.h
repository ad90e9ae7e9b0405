// Tensor-by-tensor, bit-for-bit comparison of two checkpoint directories. No LibTorch:
// tensors are compared as the bytes the format layer reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "diff/divergence.h"
#include "formats/status.h"

namespace lockstep {

struct CheckpointComparison {
  int64_t files_compared = 0;
  int64_t tensors_compared = 0;
  int64_t tensors_identical = 0;
  // Every difference found, in file then tensor order (a tensor file counts each tensor).
  std::vector<Divergence> differences;
  bool identical() const { return differences.empty(); }
};

// Compares every file of `reference` with its namesake in `candidate`:
//   *.h5    tensor by tensor: names, dtype, shape and every byte (the first differing
//           element is named);
//   *.json  value by value, skipping what identical runs may differ in: wall-clock fields,
//           output paths, and the step log's byte offsets (a resumed log holds a resume
//           record, so its offsets move);
//   others  byte for byte.
// manifest.json is skipped (its checksums restate the files). `step` labels divergences.
// Unreadable or corrupt files are a Status error naming the file.
Status CompareCheckpoints(const std::string& reference, const std::string& candidate, int64_t step,
                          CheckpointComparison* out);

// The JSON a comparison looks at for `file_name`: wall-clock fields kept (FirstJsonDifference
// skips them) but output locations dropped or reduced to what identifies them.
// training_args.bin is its pickled values (formats/tensor_sources.h).
nlohmann::json NormalizeRunJson(const std::string& file_name, nlohmann::json value);

}  // namespace lockstep
