#include "formats/json_file.h"

#include "formats/file_util.h"

namespace lockstep {
namespace {

// Nesting depth of `text`, brackets inside strings ignored. Checked before parsing so a
// file of a million '[' is refused in linear time and constant stack.
int MaxNestingDepth(const std::string& text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return max_depth;
}

}  // namespace

Status ParseJson(const std::string& text, const std::string& origin, nlohmann::json* out, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::Corruption(origin + ": JSON of " + std::to_string(text.size()) + " bytes is over the limit of " +
                              std::to_string(limits.max_bytes));
  }
  const int depth = MaxNestingDepth(text);
  if (depth > limits.max_depth) {
    return Status::Corruption(origin + ": JSON nests " + std::to_string(depth) + " levels deep, over the limit of " +
                              std::to_string(limits.max_depth));
  }
  try {
    *out = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(origin + ": invalid JSON: " + e.what());
  }
  return Status::Ok();
}

Status ReadJsonFile(const std::string& path, nlohmann::json* out, const JsonLimits& limits) {
  std::string text;
  LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(path, &text, limits.max_bytes));
  return ParseJson(text, path, out, limits);
}

Status WriteJsonFile(const std::string& path, const nlohmann::json& value) {
  return WriteFileDurably(path, DumpJson(value, 2) + "\n");
}

std::string DumpJson(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

int64_t IntField(const nlohmann::json& obj, const char* key, int64_t fallback) {
  if (!obj.is_object()) return fallback;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

const nlohmann::json& FieldOrNull(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json kNull;
  if (!obj.is_object()) return kNull;
  const auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

nlohmann::json ArrayField(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return nlohmann::json::array();
  const auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : nlohmann::json::array();
}

}  // namespace lockstep
