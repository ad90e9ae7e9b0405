#include "inspect/tensor_stats.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

namespace lockstep {
namespace {

double HalfToDouble(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  double v;
  if (exp == 0)
    v = std::ldexp(frac, -24);
  else if (exp == 31)
    v = frac ? std::nan("") : INFINITY;
  else
    v = std::ldexp(frac + 1024, exp - 25);
  return sign ? -v : v;
}

double BFloat16ToDouble(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t Load16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return bits;
}

template <typename T>
double Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return static_cast<double>(v);
}

}  // namespace

std::string CanonicalDType(const std::string& d) {
  static const std::map<std::string, std::string> kNames = {{"F64", "float64"},        {"F32", "float32"},
                                                            {"F16", "float16"},        {"BF16", "bfloat16"},
                                                            {"I64", "int64"},          {"I32", "int32"},
                                                            {"I16", "int16"},          {"I8", "int8"},
                                                            {"U8", "uint8"},           {"U16", "uint16"},
                                                            {"U32", "uint32"},         {"U64", "uint64"},
                                                            {"BOOL", "bool"},          {"F8_E4M3", "float8_e4m3fn"},
                                                            {"F8_E5M2", "float8_e5m2"}};
  const auto it = kNames.find(d);
  return it == kNames.end() ? d : it->second;
}

size_t CanonicalDTypeSize(const std::string& d) {
  static const std::map<std::string, size_t> kSizes = {
      {"float64", 8}, {"float32", 4}, {"float16", 2}, {"bfloat16", 2},      {"int64", 8},
      {"int32", 4},   {"int16", 2},   {"int8", 1},    {"uint8", 1},         {"uint16", 2},
      {"uint32", 4},  {"uint64", 8},  {"bool", 1},    {"float8_e4m3fn", 1}, {"float8_e5m2", 1}};
  const auto it = kSizes.find(d);
  return it == kSizes.end() ? 0 : it->second;
}

double DecodeElement(const std::string& d, const uint8_t* data, size_t i) {
  const uint8_t* p = data + i * CanonicalDTypeSize(d);
  if (d == "float32") return Load<float>(p);
  if (d == "float64") return Load<double>(p);
  if (d == "float16") return HalfToDouble(static_cast<uint16_t>(Load<uint16_t>(p)));
  if (d == "bfloat16") return BFloat16ToDouble(static_cast<uint16_t>(Load<uint16_t>(p)));
  if (d == "int64") return Load<int64_t>(p);
  if (d == "int32") return Load<int32_t>(p);
  if (d == "int16") return Load<int16_t>(p);
  if (d == "int8") return Load<int8_t>(p);
  if (d == "uint8" || d == "bool") return Load<uint8_t>(p);
  if (d == "uint16") return Load<uint16_t>(p);
  if (d == "uint32") return Load<uint32_t>(p);
  if (d == "uint64") return Load<uint64_t>(p);
  return std::nan("");  // float8: shown by bytes and checksum only
}

// Every half-precision value, decoded once.
static const std::vector<float>& HalfTable() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = static_cast<float>(HalfToDouble(static_cast<uint16_t>(h)));
    return t;
  }();
  return table;
}

TensorStats::TensorStats(std::string dtype)
    : dtype_(std::move(dtype)),
      elem_(CanonicalDTypeSize(dtype_)),
      sixteen_bit_(dtype_ == "bfloat16" || dtype_ == "float16") {}

double TensorStats::PatternValue(uint16_t bits) const {
  return dtype_ == "bfloat16" ? BFloat16ToDouble(bits) : static_cast<double>(HalfTable()[bits]);
}

void TensorStats::CountPatterns(const uint8_t* data, size_t n) {
  uint64_t* counts = pattern_counts_.data();
  for (size_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, data + 2 * i, 2);
    ++counts[bits];
  }
}

// One pass per chunk, with the data shifted by the chunk's first finite value K:
// s1 = sum(v - K), s2 = sum((v - K)^2) give the chunk's mean and squared deviations without
// the cancellation of raw sums (K lies within the data), and the chunks merge into the
// running moments with Chan et al.'s formula. No division per element.
template <typename Decode>
void TensorStats::AddElements(const uint8_t* data, size_t n, Decode decode) {
  size_t i = 0;
  double shift = 0;  // the chunk's first finite value
  for (; i < n; ++i) {
    const double v = decode(data + i * elem_);
    if (std::isfinite(v)) {
      shift = v;
      break;
    }
    std::isnan(v) ? ++nan_ : ++inf_;
  }
  if (i == n) return;
  // Four independent accumulators, so consecutive elements do not wait on each other's adds.
  constexpr int kLanes = 4;
  double s1[kLanes] = {}, s2[kLanes] = {}, lo[kLanes], hi[kLanes];
  uint64_t finite[kLanes] = {};
  for (int k = 0; k < kLanes; ++k) lo[k] = min_, hi[k] = max_;
  auto add = [&](int k, double v) {
    if (__builtin_expect(!std::isfinite(v), 0)) {
      std::isnan(v) ? ++nan_ : ++inf_;
      return;
    }
    const double d = v - shift;
    s1[k] += d;
    s2[k] += d * d;
    lo[k] = v < lo[k] ? v : lo[k];
    hi[k] = v > hi[k] ? v : hi[k];
    ++finite[k];
  };
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) add(k, decode(data + (i + k) * elem_));
  }
  for (; i < n; ++i) add(0, decode(data + i * elem_));
  double sum1 = 0, sum2 = 0;
  uint64_t count_n = 0;
  for (int k = 0; k < kLanes; ++k) {
    sum1 += s1[k], sum2 += s2[k], count_n += finite[k];
    min_ = std::min(min_, lo[k]);
    max_ = std::max(max_, hi[k]);
  }
  const double count = static_cast<double>(count_n);
  const double mean = shift + sum1 / count;
  const double m2 = std::max(0.0, sum2 - sum1 * sum1 / count);
  const double total = static_cast<double>(finite_) + count;
  const double delta = mean - mean_;
  mean_ += delta * count / total;
  m2_ += m2 + delta * delta * static_cast<double>(finite_) * count / total;
  finite_ += count_n;
}

void TensorStats::Add(const uint8_t* data, size_t bytes) {
  hash_.Update(data, bytes);
  if (elem_ == 0) return;
  const size_t n = bytes / elem_;
  numel_ += n;
  const std::string& d = dtype_;
  if (d == "float32") return AddElements(data, n, [](const uint8_t* p) { return Load<float>(p); });
  if (d == "float64") return AddElements(data, n, [](const uint8_t* p) { return Load<double>(p); });
  if (sixteen_bit_) {
    constexpr size_t kCountingPaysFrom = 65536;  // elements: as many as there are patterns
    if (numel_ == n && n >= kCountingPaysFrom) pattern_counts_.assign(65536, 0);  // decided on the first chunk
    if (!pattern_counts_.empty()) return CountPatterns(data, n);
    if (d == "bfloat16") {
      return AddElements(data, n, [](const uint8_t* p) { return BFloat16ToDouble(Load16(p)); });
    }
    const float* half = HalfTable().data();
    return AddElements(data, n, [half](const uint8_t* p) { return static_cast<double>(half[Load16(p)]); });
  }
  if (d.rfind("float8", 0) == 0) return;  // shown by bytes and checksum only
  // Integers and bool: rare and small in checkpoints, decoded by name.
  AddElements(data, n, [&d](const uint8_t* p) { return DecodeElement(d, p, 0); });
}

nlohmann::json TensorStats::ToJson() const {
  uint64_t finite = finite_, nan = nan_, inf = inf_;
  double lo = min_, hi = max_, mean = mean_, m2 = m2_;
  if (!pattern_counts_.empty()) {  // two passes over the 65,536 counts: exact moments
    double sum = 0;
    for (uint32_t b = 0; b < 65536; ++b) {
      const uint64_t c = pattern_counts_[b];
      if (c == 0) continue;
      const double v = PatternValue(static_cast<uint16_t>(b));
      if (!std::isfinite(v)) {
        (std::isnan(v) ? nan : inf) += c;
        continue;
      }
      finite += c;
      sum += v * static_cast<double>(c);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    mean = finite ? sum / static_cast<double>(finite) : 0;
    for (uint32_t b = 0; b < 65536; ++b) {
      const double v = pattern_counts_[b] ? PatternValue(static_cast<uint16_t>(b)) : 0;
      if (pattern_counts_[b] && std::isfinite(v))
        m2 += (v - mean) * (v - mean) * static_cast<double>(pattern_counts_[b]);
    }
  }
  nlohmann::json j = {{"numel", numel_}, {"nan", nan}, {"inf", inf}, {"xxh3_128", hash_.HexDigest()}};
  if (finite > 0) {
    j["min"] = lo;
    j["max"] = hi;
    j["mean"] = mean;
    j["std"] = finite > 1 ? std::sqrt(m2 / static_cast<double>(finite - 1)) : 0.0;
  } else {
    j["min"] = j["max"] = j["mean"] = j["std"] = nullptr;
  }
  return j;
}

}  // namespace lockstep
