// The data an evaluated pickle built, read back: a call's callable, a sequence's items, and
// any value as JSON (bounded in depth and size, a value inside itself refused), for the
// readers of torch.save archives and training_args.bin (formats/pickle_data.h).
#include <set>

#include "formats/checksum.h"
#include "formats/json_file.h"
#include "formats/pickle_data.h"

namespace lockstep {
namespace {

using Kind = PickleValue::Kind;

constexpr int kMaxDepth = 200;
constexpr size_t kMaxJsonValues = 4000000;

// ToJson's walk: a depth bound, a budget of values, and the path of values being expanded
// (a value inside itself is refused).
struct JsonWalk {
  const PickleData& data;
  const std::string& origin;
  const PickleData::Leaf& leaf;
  size_t produced = 0;
  std::set<int32_t> open;

  Status Key(int32_t index, std::string* out) {
    const PickleValue& v = data.at(index);
    if (v.kind == Kind::kString) {
      *out = v.s;
      return Status::Ok();
    }
    if (v.kind == Kind::kInt && !v.big_int) {
      *out = std::to_string(v.i);
      return Status::Ok();
    }
    nlohmann::json j;
    LOCKSTEP_RETURN_IF_ERROR(Walk(index, "(key)", 0, &j));
    *out = DumpJson(j);  // a hostile pickle's key may hold bytes that are not UTF-8
    return Status::Ok();
  }

  Status Walk(int32_t index, const std::string& path, int depth, nlohmann::json* out) {
    if (depth > kMaxDepth)
      return Status::Corruption(origin + ": pickle nests deeper than " + std::to_string(kMaxDepth));
    if (++produced > kMaxJsonValues) {
      return Status::Corruption(origin + ": pickle expands to more than " + std::to_string(kMaxJsonValues) + " values");
    }
    if (leaf && leaf(index, path, out)) return Status::Ok();
    const PickleValue& v = data.at(index);
    if (!open.insert(index).second)
      return Status::Corruption(origin + ": pickle value at " + path + " contains itself");
    const auto child = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
    Status st;
    switch (v.kind) {
      case Kind::kNone:
        *out = nullptr;
        break;
      case Kind::kBool:
        *out = v.i != 0;
        break;
      case Kind::kInt:
        *out = v.big_int ? nlohmann::json("(an integer past 64 bits)") : nlohmann::json(v.i);
        break;
      case Kind::kFloat:
        *out = v.f;
        break;
      case Kind::kString:
        *out = v.s;
        break;
      case Kind::kBytes:
        *out = {{"bytes", v.s.size()}, {"xxh3_128", Xxh3Hex(v.s.data(), v.s.size())}};
        break;
      case Kind::kGlobal:
        *out = {{"global", v.s}};
        break;
      case Kind::kOpaque:
        *out = {{"opaque", "an extension code or out-of-band buffer"}};
        break;
      case Kind::kList:
      case Kind::kTuple:
      case Kind::kSet:
        *out = nlohmann::json::array();
        for (size_t k = 0; st.ok() && k < v.items.size(); ++k) {
          nlohmann::json item;
          st = Walk(v.items[k], child(std::to_string(k)), depth + 1, &item);
          out->push_back(std::move(item));
        }
        break;
      case Kind::kDict:
        *out = nlohmann::json::object();
        for (const auto& [k, val] : v.entries) {
          std::string key;
          if (st.ok()) st = Key(k, &key);
          if (st.ok()) st = Walk(val, child(key), depth + 1, &(*out)[key]);
        }
        break;
      case Kind::kPersistentId:
        *out = nlohmann::json::object();
        st = Walk(v.items.at(0), child("persistent_id"), depth + 1, &(*out)["persistent_id"]);
        break;
      case Kind::kCall: {
        *out = {{"call", data.CallName(index)}};
        if (v.args >= 0) st = Walk(v.args, child("args"), depth + 1, &(*out)["args"]);
        if (st.ok() && v.state >= 0) st = Walk(v.state, child("state"), depth + 1, &(*out)["state"]);
        for (size_t k = 0; st.ok() && k < v.items.size(); ++k) {
          nlohmann::json item;
          st = Walk(v.items[k], child(std::to_string(k)), depth + 1, &item);
          (*out)["items"].push_back(std::move(item));
        }
        for (const auto& [k, val] : v.entries) {
          std::string key;
          if (st.ok()) st = Key(k, &key);
          if (st.ok()) st = Walk(val, child(key), depth + 1, &(*out)["entries"][key]);
        }
        break;
      }
    }
    open.erase(index);
    return st;
  }
};

}  // namespace

std::string PickleData::CallName(int32_t index) const {
  const PickleValue& v = at(index);
  if (v.kind != Kind::kCall || v.callable < 0) return "";
  const PickleValue& c = at(v.callable);
  return c.kind == Kind::kGlobal ? c.s : "";
}

const std::vector<int32_t>& PickleData::Items(int32_t index) const {
  static const std::vector<int32_t> kNone;
  const PickleValue& v = at(index);
  return v.kind == Kind::kTuple || v.kind == Kind::kList ? v.items : kNone;
}

Status PickleData::ToJson(int32_t index, const std::string& origin, const Leaf& leaf, nlohmann::json* out) const {
  JsonWalk walk{*this, origin, leaf, 0, {}};
  return walk.Walk(index, "", 0, out);
}

}  // namespace lockstep
