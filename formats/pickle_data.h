// A pickle evaluated as data, never as code: torch.save's data.pkl, HF's training_args.bin,
// DCP's .metadata. The opcodes are run on a stack machine whose "calls" (REDUCE, NEWOBJ, BUILD)
// only record what would have been called with what, so the result is the tree of values
// the pickle describes: dicts with their keys, lists, scalars, the globals it names, and
// torch's persistent ids (its tensor storages). Nothing is imported or executed.
//
// Values live in one arena and refer to each other by index, so a pickle that shares or
// nests a value in itself (a list appended to itself) is a graph, never a leak or a crash.
// Protocols 0 to 5. No LibTorch here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct PickleValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kBytes,
    kList,
    kTuple,
    kDict,
    kSet,
    kGlobal,        // a module attribute named, never imported: s = "module.name"
    kCall,          // callable(*args), then BUILD's state: what REDUCE/NEWOBJ/OBJ/INST describe
    kPersistentId,  // torch's ('storage', type, key, location, numel): items[0] is the tuple
    kOpaque,        // an extension code or an out-of-band buffer: present, not readable
  };
  Kind kind = Kind::kNone;
  int64_t i = 0;  // kBool, kInt (big_int: the integer does not fit in 64 bits)
  bool big_int = false;
  double f = 0;                                      // kFloat
  std::string s;                                     // kString, kBytes, kGlobal
  std::vector<int32_t> items;                        // kList, kTuple, kSet: the elements; kCall: items appended to it
  std::vector<std::pair<int32_t, int32_t>> entries;  // kDict: key, value; kCall: items set on it
  int32_t callable = -1, args = -1, state = -1;      // kCall
};

class PickleData {
 public:
  int32_t root() const { return root_; }
  const PickleValue& at(int32_t index) const { return values_[static_cast<size_t>(index)]; }
  size_t size() const { return values_.size(); }
  // Every global the pickle names, in order ("collections.OrderedDict", ...).
  const std::vector<std::string>& globals() const { return globals_; }

  // The global a kCall calls ("torch._utils._rebuild_tensor_v2"), or "".
  std::string CallName(int32_t index) const;
  // The elements of a kTuple or kList, or empty.
  const std::vector<int32_t>& Items(int32_t index) const;

  // The value as JSON: dicts as objects (keys as text), lists and tuples as arrays, bytes as
  // {"bytes": N, "xxh3_128": HEX}, a global as {"global": NAME}, a call as {"call": NAME,
  // "args": [...], "state": ...}. `leaf` may replace any value (a tensor, say) by returning
  // true. Corruption, naming `origin`, for a graph nested deeper than 200 or that expands to
  // more than 4,000,000 values (shared references), or that refers to itself.
  using Leaf = std::function<bool(int32_t index, const std::string& path, nlohmann::json* out)>;
  Status ToJson(int32_t index, const std::string& origin, const Leaf& leaf, nlohmann::json* out) const;

 private:
  friend Status EvaluatePickle(const std::string& bytes, const std::string& origin, PickleData* out);
  std::vector<PickleValue> values_;
  std::vector<std::string> globals_;
  int32_t root_ = -1;
};

// Runs the pickle `bytes` as data. Corruption naming `origin` and the byte offset for an
// unknown opcode, an argument past the end, a stack underflow, a missing STOP, or more
// values than the pickle has bytes (no pickle needs that).
Status EvaluatePickle(const std::string& bytes, const std::string& origin, PickleData* out);

}  // namespace lockstep
