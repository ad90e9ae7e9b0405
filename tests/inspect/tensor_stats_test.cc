// TensorStats, fed in chunks as inspect streams tensors: the same moments as one exact
// two-pass computation over all values, and NaN/Inf counted apart.
#include <cmath>
#include <cstring>
#include <vector>

#include <random>

#include <gtest/gtest.h>

#include "inspect/tensor_stats.h"

namespace lockstep {
namespace {

TEST(TensorStats, ChunkedMomentsMatchAnExactTwoPassComputation) {
  std::vector<float> v;
  for (int i = 0; i < 10000; ++i) v.push_back(1000.0f + std::sin(static_cast<float>(i)) * 0.001f * i);
  v[17] = NAN;
  v[4242] = INFINITY;
  double sum = 0, n = 0, mn = INFINITY, mx = -INFINITY;
  for (float f : v) {
    if (!std::isfinite(f)) continue;
    sum += f, ++n, mn = std::min<double>(mn, f), mx = std::max<double>(mx, f);
  }
  const double mean = sum / n;
  double m2 = 0;
  for (float f : v) {
    if (std::isfinite(f)) m2 += (f - mean) * (f - mean);
  }
  TensorStats stats("float32");
  const auto* bytes = reinterpret_cast<const uint8_t*>(v.data());
  for (size_t at = 0; at < v.size() * 4; at += 4 * 997) {  // uneven chunks of whole elements
    stats.Add(bytes + at, std::min<size_t>(4 * 997, v.size() * 4 - at));
  }
  const auto j = stats.ToJson();
  EXPECT_EQ(j["numel"], 10000);
  EXPECT_EQ(j["nan"], 1);
  EXPECT_EQ(j["inf"], 1);
  EXPECT_DOUBLE_EQ(j["min"].get<double>(), mn);
  EXPECT_DOUBLE_EQ(j["max"].get<double>(), mx);
  EXPECT_NEAR(j["mean"].get<double>(), mean, 1e-12 * mean);
  EXPECT_NEAR(j["std"].get<double>(), std::sqrt(m2 / (n - 1)), 1e-9 * std::sqrt(m2 / (n - 1)));
}

TEST(TensorStats, HalfPrecisionAndIntegersDecodeExactly) {
  const uint16_t bf16[] = {0x3f80, 0xc000, 0x7fc0};  // 1, -2, NaN
  TensorStats b("bfloat16");
  b.Add(reinterpret_cast<const uint8_t*>(bf16), sizeof(bf16));
  EXPECT_EQ(b.ToJson()["min"], -2.0);
  EXPECT_EQ(b.ToJson()["max"], 1.0);
  EXPECT_EQ(b.ToJson()["nan"], 1);
  const int64_t ints[] = {-5, 7, 3};
  TensorStats i("int64");
  i.Add(reinterpret_cast<const uint8_t*>(ints), sizeof(ints));
  EXPECT_DOUBLE_EQ(i.ToJson()["mean"].get<double>(), 5.0 / 3.0);
  EXPECT_EQ(i.ToJson()["min"], -5.0);
}

// bf16 and fp16: a large tensor is counted per bit pattern and the moments taken from the
// counts, a small one decoded element by element; both give the figures of decoding each
// element, NaN and Inf counted apart.
TEST(TensorStats, SixteenBitFloatsFromPatternCountsMatchElementByElement) {
  std::mt19937 gen(16);
  std::normal_distribution<float> normal(0.25f, 3.0f);
  for (const char* dtype : {"bfloat16", "float16"}) {
    std::vector<uint16_t> v(150000);
    for (auto& x : v) {
      const float f = normal(gen);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      x = std::string(dtype) == "bfloat16" ? static_cast<uint16_t>(bits >> 16) : 0;
    }
    if (std::string(dtype) == "float16") {
      for (auto& x : v) x = static_cast<uint16_t>(gen() & 0xfbff);  // finite halves of either sign
    }
    v[7] = std::string(dtype) == "bfloat16" ? 0x7fc0 : 0x7e00;  // NaN
    v[9] = std::string(dtype) == "bfloat16" ? 0xff80 : 0xfc00;  // -Inf
    const auto* bytes = reinterpret_cast<const uint8_t*>(v.data());
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    uint64_t n = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      const double d = DecodeElement(dtype, bytes, i);
      if (!std::isfinite(d)) continue;
      sum += d, ++n, lo = std::min(lo, d), hi = std::max(hi, d);
    }
    const double mean = sum / static_cast<double>(n);
    double m2 = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      const double d = DecodeElement(dtype, bytes, i);
      if (std::isfinite(d)) m2 += (d - mean) * (d - mean);
    }
    for (const size_t chunk : {size_t{70000}, size_t{1231}}) {  // counted; decoded (a small first chunk)
      TensorStats stats(dtype);
      for (size_t at = 0; at < v.size() * 2; at += 2 * chunk)
        stats.Add(bytes + at, std::min<size_t>(2 * chunk, v.size() * 2 - at));
      const auto j = stats.ToJson();
      EXPECT_EQ(j["numel"], 150000) << dtype << " " << chunk;
      EXPECT_EQ(j["nan"], 1) << dtype << " " << chunk;
      EXPECT_EQ(j["inf"], 1) << dtype << " " << chunk;
      EXPECT_EQ(j["min"].get<double>(), lo) << dtype << " " << chunk;
      EXPECT_EQ(j["max"].get<double>(), hi) << dtype << " " << chunk;
      EXPECT_NEAR(j["mean"].get<double>(), mean, 1e-9 * std::abs(hi)) << dtype << " " << chunk;
      EXPECT_NEAR(j["std"].get<double>(), std::sqrt(m2 / static_cast<double>(n - 1)), 1e-9 * std::abs(hi))
          << dtype << " " << chunk;
    }
  }
}

}  // namespace
}  // namespace lockstep
