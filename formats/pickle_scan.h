// Reading a pickle (torch.save's data.pkl) as data, never executing it: the opcodes are
// walked, and only what a checkpoint audit needs is collected: the tensor storages the
// pickle references (torch's persistent ids), the dict keys that own them, the scalar
// settings it spells out ("save_total_limit": 2), and the globals it would import.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct PickleStorage {
  std::string key;           // the archive entry data/<key>
  std::string storage_type;  // "torch ByteStorage", "torch FloatStorage", ...
  int64_t numel = 0;
  std::string owner;         // the last string key seen before it ("cpu", "cuda", ...)
};

struct PickleSummary {
  std::vector<PickleStorage> storages;
  std::vector<std::string> globals;                 // "collections OrderedDict", ...
  std::map<std::string, nlohmann::json> scalars;    // key string -> the scalar right after it
};

// Walks `pickle` (protocols 0-5). Corruption, naming `origin` and the offset, for an unknown
// opcode or an argument that runs past the end.
Status ScanPickle(const std::string& pickle, const std::string& origin, PickleSummary* out);

}  // namespace lockstep
