// Element-by-element comparison of two tensors' bytes, in each tensor's own dtype, with
// NumPy's tolerance rule. Streaming: feed aligned chunks of both tensors; chunks whose bytes
// are equal cost one memcmp, so identical checkpoints compare at the speed they are read.
// No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/tensor_file.h"

namespace lockstep {

// What counts as "close enough". An element passes when its bits are equal, when both are
// NaN, or when it meets any criterion given: |a - b| <= atol + rtol * |b| (NumPy's
// allclose, b the candidate; an unset atol or rtol counts as 0), or a distance of at most
// `ulp` units in the last place of the tensor's own dtype. Nothing set: bit-exact only.
struct Tolerance {
  std::optional<double> atol, rtol;
  std::optional<uint64_t> ulp;
  bool any() const { return atol || rtol || ulp; }
  nlohmann::json ToJson() const;  // {"atol": .., "rtol": .., "ulp": ..}, unset as null
  std::string ToString() const;   // "atol 1e-06, rtol 0.001", or "bit-exact"
};

// ULP distance between two values of a floating dtype given as their raw bits (f16, bf16,
// f32 or f64 widths): how many representable values lie between them. Across zero, +0 and
// -0 are 0 apart. UINT64_MAX when exactly one of them is NaN.
uint64_t UlpDistance(DType dtype, uint64_t bits_a, uint64_t bits_b);

// The comparison of one tensor pair.
struct TensorDiff {
  std::string name;
  // "equal", "differ", "missing_in_a", "missing_in_b", "shape_mismatch", "dtype_mismatch".
  std::string status = "equal";
  std::string file_a, file_b;  // where each side was read ("model.h5", "model-00001-of-00002.safetensors")
  std::string dtype_a, dtype_b;
  std::vector<int64_t> shape_a, shape_b;
  int64_t numel = 0;
  int64_t differing = 0;                               // elements whose bits differ
  int64_t first_index = -1;                            // flat (row-major) index of the first of them
  double max_abs = 0, max_rel = 0;                     // NaN when a number differs from a NaN, inf from an infinity
  uint64_t max_ulp = 0;                                // in the dtype itself; UINT64_MAX when a NaN meets a number
  int64_t nan_a = 0, nan_b = 0, inf_a = 0, inf_b = 0;  // counted over differing elements only
  int64_t outside_tolerance = 0;                       // differing elements the tolerance does not accept
  std::string first_a, first_b;                        // the first differing element, value and bits

  bool identical() const { return status == "equal"; }
  bool within_tolerance() const { return status == "equal" || (status == "differ" && outside_tolerance == 0); }
  nlohmann::json ToJson() const;  // name, status, differing, first_index, max_abs, max_rel, max_ulp, ...
};

// Compares two tensors of one dtype chunk by chunk. Usage: Add() aligned chunks of A and B
// (same length, whole elements) in order, then Finish() into a TensorDiff whose name,
// files, dtypes and shapes the caller has set.
class TensorComparer {
 public:
  TensorComparer(DType dtype, const Tolerance& tolerance);
  void Add(const uint8_t* a, const uint8_t* b, size_t bytes);
  void Finish(TensorDiff* out) const;

 private:
  void CompareElements(const uint8_t* a, const uint8_t* b, size_t count);

  DType dtype_;
  size_t elem_;
  Tolerance tolerance_;
  int64_t seen_ = 0;
  TensorDiff acc_;
};

// Compares tensors whose dtypes differ (an fp32 checkpoint against its bf16 export) value
// by value, decoded to double: differing, max_abs and max_rel, and no ULP distance (the
// dtypes share no unit). Status stays "dtype_mismatch".
void CompareAcrossDTypes(DType dtype_a, const uint8_t* a, DType dtype_b, const uint8_t* b, int64_t numel,
                         TensorDiff* out);

// The value of element `i` as text: "0.123456789 (0x3dfcd6e9)" for floats, the integer otherwise.
std::string ElementText(DType dtype, const uint8_t* data, int64_t i);

}  // namespace lockstep
