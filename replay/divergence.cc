#include "replay/divergence.h"

#include <set>

#include "formats/json_file.h"

namespace lockstep {

std::string Divergence::ToString() const {
  return "step " + std::to_string(step) + ", " + where + ": " + field + " (reference " + reference +
         ", candidate " + candidate + ")";
}

nlohmann::json Divergence::ToJson() const {
  return {{"step", step}, {"where", where}, {"field", field}, {"reference", reference}, {"candidate", candidate}};
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
  return key == "wall_time" || ends_with("_runtime") || ends_with("_per_second");
}

std::optional<JsonDifference> FirstJsonDifference(const nlohmann::json& a, const nlohmann::json& b,
                                                  const std::string& path) {
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys) {
      if (IsWallClockField(k)) continue;
      const std::string sub = path.empty() ? k : path + "." + k;
      if (!a.contains(k) || !b.contains(k)) {
        return JsonDifference{sub, a.contains(k) ? a[k] : nlohmann::json("(absent)"),
                              b.contains(k) ? b[k] : nlohmann::json("(absent)")};
      }
      if (auto d = FirstJsonDifference(a[k], b[k], sub)) return d;
    }
    return std::nullopt;
  }
  if (a.is_array() && b.is_array()) {
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
      if (auto d = FirstJsonDifference(a[i], b[i], path + "[" + std::to_string(i) + "]")) return d;
    }
    if (a.size() != b.size()) {
      return JsonDifference{path + ".length", a.size(), b.size()};
    }
    return std::nullopt;
  }
  if (a != b) return JsonDifference{path, a, b};
  return std::nullopt;
}

}  // namespace lockstep
