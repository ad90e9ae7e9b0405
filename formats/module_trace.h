// Module traces: for one replayed step, each module's forward output and each parameter's
// gradient, in execution order, summarized so two traces (CPU and GPU, two thread counts)
// can be compared bit for bit and within a tolerance. Format: doc/module_trace_format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

constexpr char kModuleTraceKind[] = "lockstep-module-trace";
constexpr int kModuleTraceVersion = 1;
constexpr size_t kModuleTraceSamples = 16;  // evenly spaced elements kept as float32 bits

// One trace entry for `values` (float32, row-major): kind ("forward" or "grad"), module or
// parameter name, micro-batch, shape, numel, the XXH3-128 of the float32 bytes, min, max,
// mean, mean |x|, NaN/Inf counts and up to kModuleTraceSamples sampled elements' bits.
nlohmann::json ModuleTraceEntry(const std::string& kind, const std::string& name, int64_t micro_batch,
                                const std::vector<int64_t>& shape, const float* values, size_t numel);

// Writes `trace` ({"kind", "format_version", "entries", ...}) durably to `path`.
Status WriteModuleTrace(const std::string& path, const nlohmann::json& trace);

// Reads and checks a trace: its kind, version, and that every entry has the fields above.
// Corruption naming the file (and the entry) otherwise.
Status ReadModuleTrace(const std::string& path, nlohmann::json* trace);

}  // namespace lockstep
