#include "diff/divergence.h"

#include <cmath>
#include <set>
#include <utility>

#include "formats/json_file.h"
#include "formats/step_record.h"

namespace lockstep {

namespace {
bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

std::string CauseOfStepField(const std::string& field) {
  // The sampler's generator decides the data order: a difference there is the data's.
  namespace k = step_key;
  if (StartsWith(field, k::kSampler) || StartsWith(field, k::kBatches) ||
      StartsWith(field, std::string(k::kRng) + "." + k::kSamplerGenerator)) {
    return cause::kData;
  }
  if (StartsWith(field, k::kRng)) return cause::kRng;
  if (field == "lr") return cause::kLr;
  if (StartsWith(field, "loss") || StartsWith(field, "grad_norm")) return cause::kNumerics;
  if (field == "step" || field == "(record)") return cause::kLength;
  return cause::kSettings;
}

std::string CauseOfLogKey(const std::string& key) {
  if (key == "learning_rate") return cause::kLr;
  if (key == "step" || key == "(entry)") return cause::kLength;
  if (key == "epoch") return cause::kData;
  return cause::kUnknown;  // loss, grad_norm, eval metrics: what preceded them was not recorded
}

bool IsNumericOutcome(const std::string& c) { return c == cause::kNumerics || c == cause::kUnknown; }

std::string Divergence::ToString() const {
  std::string causes = cause;
  for (const auto& c : also) causes += ", also " + c;
  return "step " + std::to_string(step) + ", " + where + ": " + field + (cause.empty() ? "" : " [" + causes + "]") +
         " (reference " + reference + ", candidate " + candidate + ")";
}

nlohmann::json Divergence::ToJson() const {
  nlohmann::json j = {{"step", step},   {"cause", cause},         {"where", where},
                      {"field", field}, {"reference", reference}, {"candidate", candidate}};
  if (!also.empty()) j["also_causes"] = also;
  return j;
}

Divergence MakeDivergence(int64_t step, std::string cause, std::string where, std::string field, std::string reference,
                          std::string candidate) {
  Divergence d;
  d.step = step;
  d.cause = std::move(cause);
  d.where = std::move(where);
  d.field = std::move(field);
  d.reference = std::move(reference);
  d.candidate = std::move(candidate);
  return d;
}

void KeepEarliest(const std::optional<Divergence>& d, std::optional<Divergence>* earliest) {
  if (d && (!*earliest || d->step < (*earliest)->step)) *earliest = d;
}

std::string Abbreviate(const nlohmann::json& value, size_t max_chars) {
  std::string text = value.is_string() ? value.get<std::string>() : DumpJson(value);
  if (text.size() > max_chars) text = text.substr(0, max_chars - 3) + "...";
  return text;
}

bool IsWallClockField(const std::string& key) {
  auto ends_with = [&key](const std::string& suffix) {
    return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return key == step_key::kWallTime || ends_with("_runtime") || ends_with("_per_second");
}

namespace {

// Appends the differences under `path` to `out` until it holds `limit`.
void CollectDifferences(const nlohmann::json& a, const nlohmann::json& b, const std::string& path, size_t limit,
                        std::vector<JsonDifference>* out) {
  if (out->size() >= limit) return;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      if (IsWallClockField(k) || out->size() >= limit) continue;
      const std::string sub = path.empty() ? k : path + "." + k;
      if (!a.contains(k) || !b.contains(k)) {
        out->push_back({sub, a.contains(k) ? a[k] : nlohmann::json("(absent)"),
                        b.contains(k) ? b[k] : nlohmann::json("(absent)")});
      } else {
        CollectDifferences(a[k], b[k], sub, limit, out);
      }
    }
    return;
  }
  if (a.is_array() && b.is_array()) {
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      CollectDifferences(a[i], b[i], path + "[" + std::to_string(i) + "]", limit, out);
    }
    if (a.size() != b.size() && out->size() < limit) out->push_back({path + ".length", a.size(), b.size()});
    return;
  }
  // Two NaNs are the same value here (a loss that diverged in both runs), though == says not;
  // a NaN and a number differ, though nlohmann's != calls them unordered and says not.
  const auto is_nan = [](const nlohmann::json& v) { return v.is_number_float() && std::isnan(v.get<double>()); };
  const bool differ = is_nan(a) || is_nan(b) ? !(is_nan(a) && is_nan(b)) : a != b;
  if (differ) out->push_back({path, a, b});
}

}  // namespace

std::vector<JsonDifference> JsonDifferences(const nlohmann::json& a, const nlohmann::json& b, size_t limit) {
  std::vector<JsonDifference> out;
  CollectDifferences(a, b, "", limit, &out);
  return out;
}

std::optional<JsonDifference> FirstJsonDifference(const nlohmann::json& a, const nlohmann::json& b,
                                                  const std::string& path) {
  std::vector<JsonDifference> out;
  CollectDifferences(a, b, path, 1, &out);
  if (out.empty()) return std::nullopt;
  return out.front();
}

}  // namespace lockstep
