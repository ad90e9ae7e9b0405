#include "formats/json_file.h"

#include <cstdio>
#include <cstring>
#include <limits>

#include "formats/file_util.h"

namespace lockstep {
namespace {

// Where a character of JSON text falls: inside a string (quotes included) or not. Feed
// every character in order.
class StringTracker {
 public:
  // True when `c` belongs to a string: its quotes, escapes and contents.
  bool InString(char c) {
    if (in_string_) {
      if (escaped_)
        escaped_ = false;
      else if (c == '\\')
        escaped_ = true;
      else if (c == '"')
        in_string_ = false;
      return true;
    }
    in_string_ = c == '"';
    return in_string_;
  }

 private:
  bool in_string_ = false, escaped_ = false;
};

// Nesting depth of `text`, brackets inside strings ignored. Checked before parsing so a
// file of a million '[' is refused in linear time and constant stack.
int MaxNestingDepth(const std::string& text) {
  int depth = 0, max_depth = 0;
  StringTracker strings;
  for (char c : text) {
    if (strings.InString(c)) continue;
    if (c == '[' || c == '{')
      max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}')
      --depth;
  }
  return max_depth;
}

// Python's bare words for the non-finite floats, and the strings they stand in as while
// nlohmann's parser (strict JSON) reads the text.
struct NonFinite {
  const char* word;
  const char* stand_in;
  double value;
};
const NonFinite kNonFinite[] = {{"-Infinity", "\\u0000lockstep:-Infinity", -std::numeric_limits<double>::infinity()},
                                {"Infinity", "\\u0000lockstep:Infinity", std::numeric_limits<double>::infinity()},
                                {"NaN", "\\u0000lockstep:NaN", std::numeric_limits<double>::quiet_NaN()}};

// `text` with each bare NaN, Infinity or -Infinity outside a string written as its stand-in
// string; false when it holds none (the common case: nothing is copied).
bool StandInNonFinite(const std::string& text, std::string* out) {
  if (text.find("NaN") == std::string::npos && text.find("Infinity") == std::string::npos) return false;
  bool any = false;
  StringTracker strings;
  out->clear();
  out->reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (strings.InString(c)) {
      out->push_back(c);
      continue;
    }
    bool replaced = false;
    for (const auto& n : kNonFinite) {
      const size_t len = std::strlen(n.word);
      if (text.compare(i, len, n.word) == 0) {
        *out += std::string("\"") + n.stand_in + "\"";
        i += len - 1;
        replaced = any = true;
        break;
      }
    }
    if (!replaced) out->push_back(c);
  }
  return any;
}

// The stand-in strings back to their floats, everywhere in `value`.
void RestoreNonFinite(nlohmann::json* value) {
  if (value->is_structured()) {
    for (auto& child : *value) RestoreNonFinite(&child);
  } else if (value->is_string()) {
    const std::string& s = value->get_ref<const std::string&>();
    if (s.empty() || s[0] != '\0') return;
    for (const auto& n : kNonFinite) {
      if (s.compare(1, std::string::npos, n.stand_in + 6) == 0) {  // past the 6 characters of "\u0000"
        *value = n.value;
        return;
      }
    }
  }
}

// The parser's message as text a terminal shows: it quotes the bytes it last read, which
// in a damaged file are anything; each byte outside printable ASCII becomes \xHH.
std::string Printable(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  return out;
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
  std::string strict;
  const bool stood_in = StandInNonFinite(text, &strict);
  try {
    *out = nlohmann::json::parse(stood_in ? strict : text);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(origin + ": invalid JSON: " + Printable(e.what()));
  }
  if (stood_in) RestoreNonFinite(out);
  return Status::Ok();
}

Status ReadJsonFile(const std::string& path, nlohmann::json* out, const JsonLimits& limits) {
  std::string text;
  LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(path, &text, limits.max_bytes));
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::Corruption(path + ": " + (text.empty() ? "empty (0 bytes)" : "holds only whitespace") +
                              ", not JSON: cut short, or never written");
  }
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
