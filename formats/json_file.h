// Reading and writing the JSON files of a run directory, defensively: a hostile or broken
// file yields a Status naming the file, never an exception or a stack overflow.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct JsonLimits {
  uint64_t max_bytes = 64ull << 20;  // trainer_state.json of a long run is a few MB at most
  int max_depth = 64;                // our files nest 4 deep; HF's about 5
};

// Parses `text` (from `origin`, used in messages) into `*out` within `limits`. Python's
// json module writes NaN, Infinity and -Infinity as bare words (allow_nan, its default):
// what HF's trainer_state.json holds once a loss diverges. They are read as those floats.
Status ParseJson(const std::string& text, const std::string& origin, nlohmann::json* out,
                 const JsonLimits& limits = JsonLimits());

// Reads and parses the JSON file at `path`.
Status ReadJsonFile(const std::string& path, nlohmann::json* out, const JsonLimits& limits = JsonLimits());

// `value` as JSON text (`indent` -1: one line). Strings that are not valid UTF-8 (names
// read from hostile zip archives, pickles, safetensors) are written with U+FFFD in place
// of the bad bytes: json::dump() would throw on them instead.
std::string DumpJson(const nlohmann::json& value, int indent = -1);

// obj[key] when `obj` is an object holding an integer there, else `fallback`. Never
// throws, unlike json::value() on a field of the wrong type: for reading fields of files
// that may be hostile.
int64_t IntField(const nlohmann::json& obj, const char* key, int64_t fallback);

// obj[key] when `obj` is an object holding an array there, else an empty array.
nlohmann::json ArrayField(const nlohmann::json& obj, const char* key);

// obj[key] when `obj` is an object that has it, else null: for reading files other writers
// made (a header without the trainer's fields) without a type error.
const nlohmann::json& FieldOrNull(const nlohmann::json& obj, const char* key);

// Writes `value` as indented JSON with sorted keys (HF's style), durably.
Status WriteJsonFile(const std::string& path, const nlohmann::json& value);

// Runs `read` (a function returning Status) that walks JSON read from `origin` with
// unchecked accessors: a value of the wrong type anywhere in it is Corruption naming
// `origin`, never an exception.
template <typename Read>
Status CorruptionOnJsonTypeError(const std::string& origin, Read read) {
  try {
    return read();
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(origin + ": malformed value (" + e.what() + ")");
  }
}

}  // namespace lockstep
