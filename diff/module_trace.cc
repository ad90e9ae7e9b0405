#include "diff/module_trace.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

#include "diff/step_compare.h"
#include "formats/module_trace.h"

using nlohmann::json;

namespace lockstep {
namespace {

uint32_t ParseBits(const json& v) { return FloatToBits(BitsToFloat(v)); }

float AsFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Compares the summary fields and sampled elements of two entries of one tensor.
void CompareSummaries(const json& a, const json& b, const Tolerance& tol, TraceEntryDiff* d) {
  std::vector<std::pair<json, json>> pairs;
  for (const char* k : {"min", "max", "mean", "mean_abs"}) pairs.emplace_back(a.value(k, json()), b.value(k, json()));
  for (size_t i = 0; i < std::min(a["sample"].size(), b["sample"].size()); ++i)
    pairs.emplace_back(a["sample"][i], b["sample"][i]);
  d->within_tolerance = tol.any();
  for (const auto& [x, y] : pairs) {
    if (x == y) continue;
    const uint32_t bx = ParseBits(x), by = ParseBits(y);
    const uint64_t ulp = (x.is_null() || y.is_null()) ? UINT64_MAX : UlpDistance(DType::kFloat32, bx, by);
    const double fx = AsFloat(bx), fy = AsFloat(by);
    const double abs = std::fabs(fx - fy), rel = fy != 0 ? abs / std::fabs(fy) : INFINITY;
    d->max_ulp = std::max(d->max_ulp, ulp);
    if (std::isfinite(rel)) d->max_rel = std::max(d->max_rel, rel);
    const bool close = ((tol.atol || tol.rtol) && abs <= tol.atol.value_or(0) + tol.rtol.value_or(0) * std::fabs(fy)) ||
                       (tol.ulp && ulp <= *tol.ulp);
    if (!close) d->within_tolerance = false;
  }
  // Equal summaries with different digests: the bits differ somewhere unsampled.
  if (a.value("nan", json()) != b.value("nan", json()) || a.value("inf", json()) != b.value("inf", json())) {
    d->within_tolerance = false;
  }
}

}  // namespace

static Status DiffTraceFilesUnchecked(const std::string& path_a, const std::string& path_b, const Tolerance& tol,
                                      TraceDiff* out) {
  *out = TraceDiff();
  out->tolerance = tol;
  json a, b;
  LOCKSTEP_RETURN_IF_ERROR(ReadModuleTrace(path_a, &a));
  LOCKSTEP_RETURN_IF_ERROR(ReadModuleTrace(path_b, &b));
  out->step_a = a.value("step", json()).dump();
  out->step_b = b.value("step", json()).dump();
  using Key = std::tuple<std::string, std::string, int64_t>;
  std::map<Key, const json*> in_b;
  for (const auto& e : b["entries"]) in_b[{e["kind"], e["name"], e["micro_batch"]}] = &e;
  auto add = [&](TraceEntryDiff d) {
    if (d.status != "equal" && !out->first) out->first = out->entries.size();
    if (!d.within_tolerance && !out->first_outside) out->first_outside = out->entries.size();
    out->entries.push_back(std::move(d));
  };
  for (const auto& ea : a["entries"]) {
    TraceEntryDiff d{ea["kind"], ea["name"], ea["micro_batch"], "equal", 0, 0, true};
    const auto it = in_b.find({d.kind, d.name, d.micro_batch});
    if (it == in_b.end()) {
      d.status = "missing_in_b";
      d.within_tolerance = false;
    } else {
      const json& eb = *it->second;
      in_b.erase(it);
      if (ea.value("shape", json()) != eb.value("shape", json())) {
        d.status = "shape_mismatch";
        d.within_tolerance = false;
      } else if (ea["xxh3_128"] != eb["xxh3_128"]) {
        d.status = "differ";
        CompareSummaries(ea, eb, tol, &d);
      }
    }
    add(std::move(d));
  }
  for (const auto& [key, eb] : in_b) {
    add({std::get<0>(key), std::get<1>(key), std::get<2>(key), "missing_in_a", 0, 0, false});
  }
  return Status::Ok();
}

// A value of the wrong JSON type anywhere in the inputs is corruption, never an exception.
Status DiffTraceFiles(const std::string& path_a, const std::string& path_b, const Tolerance& tol, TraceDiff* out) {
  try {
    return DiffTraceFilesUnchecked(path_a, path_b, tol, out);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path_a + " or " + path_b + ": malformed value (" + e.what() + ")");
  }
}

json TraceDiffJson(const TraceDiff& d) {
  json entries = json::array();
  for (const auto& e : d.entries) {
    entries.push_back({{"kind", e.kind},
                       {"name", e.name},
                       {"micro_batch", e.micro_batch},
                       {"status", e.status},
                       {"max_ulp", e.max_ulp == UINT64_MAX ? json("nan") : json(e.max_ulp)},
                       {"max_rel", e.max_rel},
                       {"within_tolerance", e.within_tolerance}});
  }
  auto module = [&](const std::optional<size_t>& i) {
    if (!i) return json();
    const auto& e = d.entries[*i];
    return json{{"kind", e.kind}, {"name", e.name}, {"micro_batch", e.micro_batch}, {"status", e.status}};
  };
  return {{"identical", d.identical()},
          {"within_tolerance", d.within_tolerance()},
          {"tolerance", d.tolerance.ToJson()},
          {"first_module", module(d.first)},
          {"first_outside_tolerance", module(d.first_outside)},
          {"entries", entries}};
}

std::string TraceDiffText(const TraceDiff& d) {
  std::string out;
  if (d.identical()) {
    out = "IDENTICAL: " + std::to_string(d.entries.size()) + " module outputs and gradients bit for bit\n";
  } else {
    const auto& f = d.entries[*d.first];
    out = std::string(d.within_tolerance() ? "WITHIN TOLERANCE" : "DIFFERENT") + ": first differs at " +
          (f.kind == "forward" ? "module " : "the gradient of ") + f.name + " (" +
          (f.micro_batch < 0 ? std::string("the whole accumulation window")
                             : "micro-batch " + std::to_string(f.micro_batch)) +
          ", " + f.status + ")\n";
  }
  char line[256];
  std::snprintf(line, sizeof(line), "\n  %-4s %-8s %-36s %-14s %10s %10s\n", "#", "kind", "name", "status", "max ulp",
                "max rel");
  out += line;
  for (size_t i = 0; i < d.entries.size(); ++i) {
    const auto& e = d.entries[i];
    const std::string ulp = e.max_ulp == UINT64_MAX ? "nan" : std::to_string(e.max_ulp);
    std::snprintf(line, sizeof(line), "  %-4zu %-8s %-36s %-14s %10s %10.3g%s\n", i, e.kind.c_str(), e.name.c_str(),
                  e.status.c_str(), ulp.c_str(), e.max_rel, d.first && *d.first == i ? "   <- first" : "");
    out += line;
  }
  return out;
}

}  // namespace lockstep
