#include "formats/module_trace.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "formats/checksum.h"
#include "formats/json_file.h"

using nlohmann::json;

namespace lockstep {
namespace {

std::string Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08" PRIx32, u);
  return buf;
}

}  // namespace

json ModuleTraceEntry(const std::string& kind, const std::string& name, int64_t micro_batch,
                      const std::vector<int64_t>& shape, const float* values, size_t numel) {
  double min = INFINITY, max = -INFINITY, sum = 0, sum_abs = 0;
  int64_t nan = 0, inf = 0, finite = 0;
  for (size_t i = 0; i < numel; ++i) {
    const float v = values[i];
    if (std::isnan(v)) {
      ++nan;
      continue;
    }
    if (std::isinf(v)) {
      ++inf;
      continue;
    }
    ++finite;
    min = std::min<double>(min, v);
    max = std::max<double>(max, v);
    sum += v;
    sum_abs += std::fabs(v);
  }
  json sample = json::array();
  const size_t count = std::min(numel, kModuleTraceSamples);
  for (size_t k = 0; k < count; ++k) sample.push_back(Bits(values[k * numel / count]));
  auto f32 = [](double v) { return std::isfinite(v) ? json(Bits(static_cast<float>(v))) : json(); };
  return {{"kind", kind},
          {"name", name},
          {"micro_batch", micro_batch},
          {"shape", shape},
          {"numel", numel},
          {"xxh3_128", Xxh3Hex(values, numel * sizeof(float))},
          {"min", f32(min)},
          {"max", f32(max)},
          {"mean", f32(finite ? sum / finite : 0.0)},
          {"mean_abs", f32(finite ? sum_abs / finite : 0.0)},
          {"nan", nan},
          {"inf", inf},
          {"sample", sample}};
}

Status WriteModuleTrace(const std::string& path, const json& trace) {
  json out = trace;
  out["kind"] = kModuleTraceKind;
  out["format_version"] = kModuleTraceVersion;
  return WriteJsonFile(path, out);
}

Status ReadModuleTrace(const std::string& path, json* trace) {
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(path, trace));
  if (!trace->is_object() || trace->value("kind", json()) != kModuleTraceKind) {
    return Status::Corruption(path + ": not a module trace (no \"kind\": \"" + kModuleTraceKind + "\")");
  }
  if (trace->value("format_version", json()) != kModuleTraceVersion) {
    return Status::Corruption(path + ": module trace format_version " +
                              DumpJson(trace->value("format_version", json())) + ", this build reads " +
                              std::to_string(kModuleTraceVersion));
  }
  const json& entries = trace->value("entries", json());
  if (!entries.is_array()) return Status::Corruption(path + ": \"entries\" is not a list");
  for (size_t i = 0; i < entries.size(); ++i) {
    const json& e = entries[i];
    const bool ok = e.is_object() && e.value("kind", json()).is_string() && e.value("name", json()).is_string() &&
                    e.value("xxh3_128", json()).is_string() && e.value("sample", json()).is_array() &&
                    e.value("micro_batch", json()).is_number_integer();
    if (!ok)
      return Status::Corruption(path + ": entry " + std::to_string(i) +
                                " lacks kind, name, micro_batch, xxh3_128 or sample");
    for (const auto& s : e["sample"]) {
      if (!s.is_string())
        return Status::Corruption(path + ": entry " + std::to_string(i) + ": a sample is not a bits string");
    }
  }
  return Status::Ok();
}

}  // namespace lockstep
