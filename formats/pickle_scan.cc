#include "formats/pickle_scan.h"

#include <cstring>

namespace lockstep {
namespace {

uint64_t Le(const std::string& b, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
  return v;
}

// A value the scanner keeps: strings and scalars; everything else is opaque.
struct Value {
  enum Kind { kOpaque, kString, kInt, kFloat, kBool, kNone, kGlobal } kind = kOpaque;
  std::string s;
  int64_t i = 0;
  double f = 0;
  nlohmann::json ToJson() const {
    switch (kind) {
      case kString: return s;
      case kInt: return i;
      case kFloat: return f;
      case kBool: return i != 0;
      case kNone: return nullptr;
      default: return nlohmann::json();
    }
  }
};

}  // namespace

Status ScanPickle(const std::string& p, const std::string& origin, PickleSummary* out) {
  *out = PickleSummary();
  std::map<uint64_t, Value> memo;
  Value last;              // the value most recently pushed
  std::string pending_key;  // a string waiting to see whether a scalar follows it
  std::string owner;        // the latest string pushed (other than "storage")
  std::string owner_at_mark;  // `owner` when the current MARK was pushed
  std::vector<Value> tuple;  // values since the last MARK (for persistent ids)
  size_t pos = 0;
  auto need = [&](size_t n) { return pos + n <= p.size(); };
  auto bad = [&](const std::string& why) {
    return Status::Corruption(origin + ": pickle byte " + std::to_string(pos) + ": " + why);
  };
  auto push = [&](const Value& v) {
    if (v.kind != Value::kString && v.kind != Value::kOpaque && v.kind != Value::kGlobal && !pending_key.empty()) {
      out->scalars.emplace(pending_key, v.ToJson());
    }
    if (v.kind == Value::kString && !pending_key.empty() && v.s != pending_key) {
      out->scalars.emplace(pending_key, v.ToJson());
    }
    pending_key = v.kind == Value::kString ? v.s : "";
    if (v.kind == Value::kString && v.s != "storage") owner = v.s;
    last = v;
    tuple.push_back(v);
  };
  while (pos < p.size()) {
    const uint8_t op = static_cast<uint8_t>(p[pos++]);
    Value v;
    switch (op) {
      case '(':  // MARK
        tuple.clear();
        pending_key.clear();
        owner_at_mark = owner;
        break;
      case '.': return Status::Ok();                         // STOP
      case 'N': v.kind = Value::kNone; push(v); break;
      case 0x88: case 0x89: v.kind = Value::kBool; v.i = op == 0x88; push(v); break;
      case '}': case ']': case ')': case 't': case 0x85: case 0x86: case 0x87: case 'a': case 'e':
      case 's': case 'u': case 'R': case 'b': case 0x81: case 'd': case 'l': case 0x8f: case 0x90:
      case 0x91: case 0x92: case 0x93: case 0x97: case 0x98: case 'o': case '0': case '1': case '2':
        if (op != 'R' && op != 't') pending_key.clear();
        last = Value();
        break;
      case 0x94: memo[memo.size()] = last; break;  // MEMOIZE
      case 'Q': {  // BINPERSID: torch's ('storage', type, key, location, numel)
        pending_key.clear();
        std::vector<Value> t = tuple;
        for (size_t k = 0; k + 1 < t.size(); ++k) {
          if (t[k].kind == Value::kString && t[k].s == "storage") {
            PickleStorage s;
            s.storage_type = t[k + 1].s;
            for (size_t m = k + 2; m < t.size(); ++m) {
              if (t[m].kind == Value::kString && s.key.empty()) s.key = t[m].s;
              if (t[m].kind == Value::kInt) s.numel = t[m].i;
            }
            s.owner = owner_at_mark;
            out->storages.push_back(s);
            break;
          }
        }
        last = Value();
        break;
      }
      case 'K': if (!need(1)) return bad("truncated"); v.kind = Value::kInt; v.i = Le(p, pos, 1); pos += 1; push(v); break;
      case 'M': if (!need(2)) return bad("truncated"); v.kind = Value::kInt; v.i = Le(p, pos, 2); pos += 2; push(v); break;
      case 'J': if (!need(4)) return bad("truncated"); v.kind = Value::kInt; v.i = static_cast<int32_t>(Le(p, pos, 4)); pos += 4; push(v); break;
      case 0x8a: case 0x8b: {  // LONG1 / LONG4: little-endian two's complement
        const int lb = op == 0x8a ? 1 : 4;
        if (!need(lb)) return bad("truncated");
        const uint64_t n = Le(p, pos, lb);
        pos += lb;
        if (!need(n)) return bad("long runs past the end");
        v.kind = Value::kInt;
        if (n <= 8) {
          uint64_t u = n ? Le(p, pos, static_cast<int>(n)) : 0;
          if (n && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~0ull << (8 * n);
          v.i = static_cast<int64_t>(u);
        }
        pos += n;
        push(v);
        break;
      }
      case 'G': {
        if (!need(8)) return bad("truncated");
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(p[pos + k]);  // big-endian
        std::memcpy(&v.f, &bits, 8);
        v.kind = Value::kFloat;
        pos += 8;
        push(v);
        break;
      }
      case 'q': case 'h': case 'r': case 'j': case 0x80: case 0x82: case 0x83: case 0x84: {
        const int n = (op == 'q' || op == 'h' || op == 0x80 || op == 0x82) ? 1 : (op == 0x83 ? 2 : 4);
        if (!need(n)) return bad("truncated");
        const uint64_t idx = Le(p, pos, n);
        pos += n;
        if (op == 'q' || op == 'r') memo[idx] = last;
        if (op == 'h' || op == 'j') {
          const auto it = memo.find(idx);
          push(it == memo.end() ? Value() : it->second);
        }
        break;
      }
      case 0x95: if (!need(8)) return bad("truncated"); pos += 8; break;  // FRAME
      case 0x8c: case 'C': case 'U': case 'X': case 'B': case 'T': case 0x8d: case 0x8e: case 0x96: {
        const int lb = (op == 0x8c || op == 'C' || op == 'U') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
        if (!need(lb)) return bad("truncated");
        const uint64_t n = Le(p, pos, lb);
        pos += lb;
        if (n > p.size() || !need(n)) return bad("string runs past the end");
        const bool text = op == 0x8c || op == 'X' || op == 0x8d || op == 'U' || op == 'T';
        if (text) {
          v.kind = Value::kString;
          v.s = p.substr(pos, n);
        }
        pos += n;
        push(v);
        break;
      }
      case 'c': case 'i': {  // GLOBAL / INST: "module\nname\n"
        const size_t a = p.find('\n', pos);
        const size_t b = a == std::string::npos ? a : p.find('\n', a + 1);
        if (b == std::string::npos) return bad("global runs past the end");
        v.kind = Value::kGlobal;  // a type, never a key or an owner
        v.s = p.substr(pos, a - pos) + " " + p.substr(a + 1, b - a - 1);
        out->globals.push_back(v.s);
        pos = b + 1;
        pending_key.clear();
        last = v;
        tuple.push_back(v);
        break;
      }
      case 'I': case 'L': case 'F': case 'S': case 'V': case 'P': case 'g': case 'p': {
        const size_t a = p.find('\n', pos);
        if (a == std::string::npos) return bad("line runs past the end");
        pos = a + 1;
        last = Value();
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", op);
        --pos;
        return bad(std::string("unknown opcode ") + hex);
      }
    }
  }
  return Status::Corruption(origin + ": pickle ends without STOP");
}

}  // namespace lockstep
