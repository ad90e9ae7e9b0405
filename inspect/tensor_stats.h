// Statistics of a tensor's raw bytes, computed in one streaming pass: numel, min, max,
// mean, std (unbiased, as torch.std), NaN and Inf counts, and an XXH3-128 of the bytes.
// bf16 and fp16 are decoded exactly; no framework is needed.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/checksum.h"

namespace lockstep {

// Canonical dtype names ("float32", "bfloat16", ...) for safetensors' ("F32", "BF16", ...).
std::string CanonicalDType(const std::string& dtype);
// Bytes per element of a canonical dtype; 0 when unknown.
size_t CanonicalDTypeSize(const std::string& dtype);

// Decodes element `i` of `data` (canonical `dtype`) as a double; NaN for unknown dtypes.
double DecodeElement(const std::string& dtype, const uint8_t* data, size_t i);

class TensorStats {
 public:
  explicit TensorStats(std::string dtype);
  // Feeds the next bytes; chunks must hold whole elements.
  void Add(const uint8_t* data, size_t bytes);
  nlohmann::json ToJson() const;  // numel, min, max, mean, std, nan, inf, xxh3_128

 private:
  // Decodes and accumulates `n` elements with one decoder chosen per call, not per element.
  template <typename Decode>
  void AddElements(const uint8_t* data, size_t n, Decode decode);
  // 16-bit floats have 65,536 values: counting each bit pattern is one increment per
  // element, and the moments come from the counts, exactly, when they are read. A tensor
  // whose first chunk is small is decoded element by element instead: a checkpoint of many
  // small tensors (LoRA adapters) should not pay for 65,536 counts each.
  void CountPatterns(const uint8_t* data, size_t n);
  double PatternValue(uint16_t bits) const;

  std::string dtype_;
  size_t elem_;
  uint64_t numel_ = 0, finite_ = 0, nan_ = 0, inf_ = 0;
  double min_ = std::numeric_limits<double>::infinity(), max_ = -std::numeric_limits<double>::infinity();
  double mean_ = 0, m2_ = 0;              // over the finite values: per chunk two-pass, merged (Chan et al.)
  bool sixteen_bit_ = false;              // bfloat16 or float16
  std::vector<uint64_t> pattern_counts_;  // a count per bit pattern, for a large 16-bit tensor
  Xxh3Stream hash_;
};

}  // namespace lockstep
