#include "diff/tensor_compare.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace lockstep {
namespace {

bool IsFloat(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat64 || d == DType::kFloat16 || d == DType::kBFloat16;
}

uint64_t LoadBits(const uint8_t* p, size_t elem) {
  uint64_t v = 0;
  std::memcpy(&v, p, elem);  // little-endian hosts only, as every format here
  return v;
}

double HalfToDouble(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * INFINITY;
  return sign * std::ldexp(mant + 1024, exp - 25);
}

// Element bits as a double, exactly (every dtype here fits in a double but int64's extremes).
double Decode(DType d, uint64_t bits) {
  switch (d) {
    case DType::kFloat32: {
      float f;
      const uint32_t b = static_cast<uint32_t>(bits);
      std::memcpy(&f, &b, 4);
      return f;
    }
    case DType::kFloat64: {
      double v;
      std::memcpy(&v, &bits, 8);
      return v;
    }
    case DType::kFloat16:
      return HalfToDouble(static_cast<uint16_t>(bits));
    case DType::kBFloat16: {
      const uint32_t b = static_cast<uint32_t>(bits) << 16;
      float f;
      std::memcpy(&f, &b, 4);
      return f;
    }
    case DType::kInt64:
      return static_cast<double>(static_cast<int64_t>(bits));
    case DType::kInt32:
      return static_cast<int32_t>(static_cast<uint32_t>(bits));
    case DType::kInt16:
      return static_cast<int16_t>(static_cast<uint16_t>(bits));
    case DType::kInt8:
      return static_cast<int8_t>(static_cast<uint8_t>(bits));
    case DType::kUInt8:
    case DType::kBool:
      return static_cast<double>(bits);
  }
  return 0;
}

int SignBit(DType d) {
  switch (d) {
    case DType::kFloat64:
      return 63;
    case DType::kFloat32:
      return 31;
    default:
      return 15;
  }
}

}  // namespace

nlohmann::json Tolerance::ToJson() const {
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  return {{"atol", opt(atol)}, {"rtol", opt(rtol)}, {"ulp", opt(ulp)}};
}

std::string Tolerance::ToString() const {
  std::string out;
  char buf[64];
  if (atol) std::snprintf(buf, sizeof(buf), "atol %g", *atol), out += buf;
  if (rtol) std::snprintf(buf, sizeof(buf), "%srtol %g", out.empty() ? "" : ", ", *rtol), out += buf;
  if (ulp) out += (out.empty() ? "" : ", ") + std::string("ulp ") + std::to_string(*ulp);
  return out.empty() ? "bit-exact" : out;
}

uint64_t UlpDistance(DType dtype, uint64_t a, uint64_t b) {
  const double va = Decode(dtype, a), vb = Decode(dtype, b);
  if (std::isnan(va) || std::isnan(vb)) return std::isnan(va) && std::isnan(vb) ? 0 : UINT64_MAX;
  const int sign = SignBit(dtype);
  const uint64_t mask = (sign == 63) ? ~(1ull << 63) : ((1ull << sign) - 1);
  const uint64_t ma = a & mask, mb = b & mask;  // magnitudes, monotonic in the value
  const bool na = (a >> sign) & 1, nb = (b >> sign) & 1;
  if (na == nb) return ma > mb ? ma - mb : mb - ma;
  return ma + mb;  // across zero: down to 0 on one side, up from it on the other
}

// A differing pair with a non-finite side has no finite distance: NaN against a number makes
// the maxima NaN (and they stay so), an infinity makes them infinite. Never 0.
static void NoteNonFinite(double a, double b, double* max_abs, double* max_rel) {
  if (std::isfinite(a) && std::isfinite(b)) return;
  if (std::isnan(a) || std::isnan(b)) {
    *max_abs = *max_rel = NAN;
  } else if (!std::isnan(*max_abs)) {
    *max_abs = *max_rel = INFINITY;
  }
}

TensorComparer::TensorComparer(DType dtype, const Tolerance& tolerance)
    : dtype_(dtype), elem_(DTypeSize(dtype)), tolerance_(tolerance) {}

void TensorComparer::Add(const uint8_t* a, const uint8_t* b, size_t bytes) {
  const size_t count = bytes / elem_;
  if (std::memcmp(a, b, count * elem_) != 0) CompareElements(a, b, count);
  seen_ += static_cast<int64_t>(count);
}

void TensorComparer::CompareElements(const uint8_t* a, const uint8_t* b, size_t count) {
  const bool floating = IsFloat(dtype_);
  for (size_t i = 0; i < count; ++i) {
    const uint64_t ba = LoadBits(a + i * elem_, elem_), bb = LoadBits(b + i * elem_, elem_);
    if (ba == bb) continue;
    if (acc_.differing++ == 0) {
      acc_.first_index = seen_ + static_cast<int64_t>(i);
      acc_.first_a = ElementText(dtype_, a, static_cast<int64_t>(i));
      acc_.first_b = ElementText(dtype_, b, static_cast<int64_t>(i));
    }
    const double va = Decode(dtype_, ba), vb = Decode(dtype_, bb);
    acc_.nan_a += std::isnan(va);
    acc_.nan_b += std::isnan(vb);
    acc_.inf_a += std::isinf(va);
    acc_.inf_b += std::isinf(vb);
    const uint64_t ulp = floating ? UlpDistance(dtype_, ba, bb) : static_cast<uint64_t>(std::fabs(va - vb));
    acc_.max_ulp = std::max(acc_.max_ulp, ulp);
    bool pass = std::isnan(va) && std::isnan(vb);
    if (!pass) NoteNonFinite(va, vb, &acc_.max_abs, &acc_.max_rel);
    if (std::isfinite(va) && std::isfinite(vb)) {
      const double abs = std::fabs(va - vb);
      const double rel = vb != 0 ? abs / std::fabs(vb) : INFINITY;
      acc_.max_abs = std::max(acc_.max_abs, abs);
      acc_.max_rel = std::max(acc_.max_rel, rel);
      if ((tolerance_.atol || tolerance_.rtol) &&
          abs <= tolerance_.atol.value_or(0.0) + tolerance_.rtol.value_or(0.0) * std::fabs(vb)) {
        pass = true;
      }
    }
    if (tolerance_.ulp && ulp <= *tolerance_.ulp) pass = true;
    if (!pass) ++acc_.outside_tolerance;
  }
}

void TensorComparer::Finish(TensorDiff* out) const {
  out->numel = seen_;
  out->differing = acc_.differing;
  out->first_index = acc_.first_index;
  out->first_a = acc_.first_a;
  out->first_b = acc_.first_b;
  out->max_abs = acc_.max_abs;
  out->max_rel = acc_.max_rel;
  out->max_ulp = acc_.max_ulp;
  out->nan_a = acc_.nan_a;
  out->nan_b = acc_.nan_b;
  out->inf_a = acc_.inf_a;
  out->inf_b = acc_.inf_b;
  out->outside_tolerance = acc_.outside_tolerance;
  out->status = acc_.differing ? "differ" : "equal";
}

void CompareAcrossDTypes(DType dtype_a, const uint8_t* a, DType dtype_b, const uint8_t* b, int64_t numel,
                         TensorDiff* out) {
  const size_t ea = DTypeSize(dtype_a), eb = DTypeSize(dtype_b);
  out->numel = numel;
  for (int64_t i = 0; i < numel; ++i) {
    const double va = Decode(dtype_a, LoadBits(a + i * ea, ea)), vb = Decode(dtype_b, LoadBits(b + i * eb, eb));
    if (va == vb || (std::isnan(va) && std::isnan(vb))) continue;
    if (out->differing++ == 0) {
      out->first_index = i;
      out->first_a = ElementText(dtype_a, a, i);
      out->first_b = ElementText(dtype_b, b, i);
    }
    NoteNonFinite(va, vb, &out->max_abs, &out->max_rel);
    if (std::isfinite(va) && std::isfinite(vb)) {
      const double abs = std::fabs(va - vb);
      out->max_abs = std::max(out->max_abs, abs);
      out->max_rel = std::max(out->max_rel, vb != 0 ? abs / std::fabs(vb) : INFINITY);
    }
    ++out->outside_tolerance;  // no shared unit: a dtype mismatch is never "within"
  }
}

std::string ElementText(DType dtype, const uint8_t* data, int64_t i) {
  const size_t elem = DTypeSize(dtype);
  const uint64_t bits = LoadBits(data + static_cast<size_t>(i) * elem, elem);
  char buf[64];
  if (IsFloat(dtype)) {
    std::snprintf(buf, sizeof(buf), "%.9g (0x%0*" PRIx64 ")", Decode(dtype, bits), static_cast<int>(elem * 2), bits);
  } else if (dtype == DType::kInt64) {
    std::snprintf(buf, sizeof(buf), "%" PRId64, static_cast<int64_t>(bits));
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f", Decode(dtype, bits));
  }
  return buf;
}

nlohmann::json TensorDiff::ToJson() const {
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(std::to_string(v)); };
  nlohmann::json j = {{"name", name},
                      {"status", status},
                      {"file_a", file_a},
                      {"file_b", file_b},
                      {"dtype_a", dtype_a},
                      {"dtype_b", dtype_b},
                      {"shape_a", shape_a},
                      {"shape_b", shape_b},
                      {"numel", numel},
                      {"differing", differing},
                      {"first_index", first_index >= 0 ? nlohmann::json(first_index) : nlohmann::json()},
                      {"max_abs", number(max_abs)},
                      {"max_rel", number(max_rel)},
                      {"max_ulp", max_ulp == UINT64_MAX ? nlohmann::json("nan") : nlohmann::json(max_ulp)},
                      {"within_tolerance", within_tolerance()}};
  if (dtype_a != dtype_b) j["max_ulp"] = nullptr;
  if (differing) {
    j["first_a"] = first_a;
    j["first_b"] = first_b;
  }
  if (nan_a != nan_b || inf_a != inf_b) {
    j["nan_a"] = nan_a;
    j["nan_b"] = nan_b;
    j["inf_a"] = inf_a;
    j["inf_b"] = inf_b;
  }
  return j;
}

}  // namespace lockstep
