#include "formats/pickle_data.h"

#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace lockstep {
namespace {

using Kind = PickleValue::Kind;

uint64_t LittleEndian(const std::string& b, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[pos + static_cast<size_t>(i)]);
  return v;
}

// The stack machine. Each opcode's handler is a case of Step(); values go to `data->values_`.
class Machine {
 public:
  Machine(const std::string& bytes, const std::string& origin, std::vector<PickleValue>* values,
          std::vector<std::string>* globals)
      : p_(bytes), origin_(origin), values_(values), globals_(globals) {}

  Status Run(int32_t* root);

 private:
  Status Bad(const std::string& why) const {
    return Status::Corruption(origin_ + ": pickle byte " + std::to_string(op_at_) + ": " + why);
  }
  bool Need(size_t n) const { return pos_ + n <= p_.size() && pos_ + n >= pos_; }
  int32_t New(Kind kind) {
    values_->emplace_back();
    values_->back().kind = kind;
    return static_cast<int32_t>(values_->size() - 1);
  }
  PickleValue& V(int32_t i) { return (*values_)[static_cast<size_t>(i)]; }
  Status Pop(int32_t* out) {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return Bad("stack underflow");
    *out = stack_.back();
    stack_.pop_back();
    return Status::Ok();
  }
  Status Top(int32_t* out) const {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return Bad("stack underflow");
    *out = stack_.back();
    return Status::Ok();
  }
  // The values pushed since the last MARK, which is removed with them.
  Status PopMark(std::vector<int32_t>* out) {
    if (marks_.empty()) return Bad("no MARK to pop to");
    const size_t at = marks_.back();
    marks_.pop_back();
    out->assign(stack_.begin() + static_cast<std::ptrdiff_t>(at), stack_.end());
    stack_.resize(at);
    return Status::Ok();
  }
  Status Line(std::string* out) {
    const size_t nl = p_.find('\n', pos_);
    if (nl == std::string::npos) return Bad("a line runs past the end");
    *out = p_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return Status::Ok();
  }
  Status Fixed(int bytes, uint64_t* out) {
    if (!Need(static_cast<size_t>(bytes))) return Bad("truncated");
    *out = LittleEndian(p_, pos_, bytes);
    pos_ += static_cast<size_t>(bytes);
    return Status::Ok();
  }
  Status Counted(int length_bytes, std::string* out) {
    uint64_t n = 0;
    LOCKSTEP_RETURN_IF_ERROR(Fixed(length_bytes, &n));
    if (n > p_.size() || !Need(static_cast<size_t>(n))) return Bad("a string runs past the end");
    *out = p_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return Status::Ok();
  }
  void PushInt(int64_t v, bool big = false) {
    const int32_t i = New(Kind::kInt);
    V(i).i = v;
    V(i).big_int = big;
    stack_.push_back(i);
  }
  void PushText(Kind kind, std::string s) {
    const int32_t i = New(kind);
    V(i).s = std::move(s);
    stack_.push_back(i);
  }
  void PushCall(int32_t callable, int32_t args) {
    const int32_t i = New(Kind::kCall);
    V(i).callable = callable;
    V(i).args = args;
    stack_.push_back(i);
  }
  int32_t Sequence(Kind kind, std::vector<int32_t> items) {
    const int32_t i = New(kind);
    V(i).items = std::move(items);
    return i;
  }
  Status Global(const std::string& module, const std::string& name) {
    globals_->push_back(module + "." + name);
    PushText(Kind::kGlobal, module + "." + name);
    return Status::Ok();
  }
  Status Append(int32_t target, const std::vector<int32_t>& items) {
    PickleValue& t = V(target);
    if (t.kind != Kind::kList && t.kind != Kind::kSet && t.kind != Kind::kCall) return Bad("APPEND to a non-list");
    t.items.insert(t.items.end(), items.begin(), items.end());
    return Status::Ok();
  }
  Status SetItems(int32_t target, const std::vector<int32_t>& kv) {
    PickleValue& t = V(target);
    if (t.kind != Kind::kDict && t.kind != Kind::kCall) return Bad("SETITEM on a non-dict");
    if (kv.size() % 2 != 0) return Bad("SETITEMS with an odd number of values");
    for (size_t k = 0; k + 1 < kv.size(); k += 2) t.entries.emplace_back(kv[k], kv[k + 1]);
    return Status::Ok();
  }
  Status Memo(uint64_t key) {
    int32_t top = 0;
    LOCKSTEP_RETURN_IF_ERROR(Top(&top));
    memo_[key] = top;
    return Status::Ok();
  }
  Status Recall(uint64_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) return Bad("GET of memo " + std::to_string(key) + ", never put");
    stack_.push_back(it->second);
    return Status::Ok();
  }
  Status Step(uint8_t op, bool* stop);

  const std::string& p_;
  const std::string& origin_;
  std::vector<PickleValue>* values_;
  std::vector<std::string>* globals_;
  std::vector<int32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, int32_t> memo_;
  size_t pos_ = 0, op_at_ = 0;
};

Status Machine::Run(int32_t* root) {
  bool stop = false;
  while (pos_ < p_.size()) {
    op_at_ = pos_;
    LOCKSTEP_RETURN_IF_ERROR(Step(static_cast<uint8_t>(p_[pos_++]), &stop));
    if (values_->size() > p_.size() + 16) return Bad("more values than the pickle has bytes");
    if (stop) {
      if (stack_.empty()) return Bad("STOP with an empty stack");
      *root = stack_.back();
      return Status::Ok();
    }
  }
  return Status::Corruption(origin_ + ": pickle ends without STOP");
}

Status Machine::Step(uint8_t op, bool* stop) {
  uint64_t n = 0;
  std::string text, text2;
  int32_t a = 0, b = 0, c = 0;
  std::vector<int32_t> items;
  switch (op) {
    case 0x80:
      return Fixed(1, &n);  // PROTO
    case 0x95:
      return Fixed(8, &n);  // FRAME
    case '.':
      *stop = true;
      return Status::Ok();
    case '(':
      marks_.push_back(stack_.size());
      return Status::Ok();
    case '0':
      return Pop(&a);
    case '1':
      return PopMark(&items);
    case '2':
      LOCKSTEP_RETURN_IF_ERROR(Top(&a));
      stack_.push_back(a);
      return Status::Ok();
    case 'N':
      stack_.push_back(New(Kind::kNone));
      return Status::Ok();
    case 0x88:
    case 0x89:
      a = New(Kind::kBool);
      V(a).i = op == 0x88;
      stack_.push_back(a);
      return Status::Ok();
    case 'I':
    case 'L': {  // INT, LONG: decimal lines ("01"/"00" are protocol 0's True/False)
      LOCKSTEP_RETURN_IF_ERROR(Line(&text));
      if (op == 'I' && (text == "01" || text == "00")) {
        a = New(Kind::kBool);
        V(a).i = text == "01";
        stack_.push_back(a);
        return Status::Ok();
      }
      if (!text.empty() && text.back() == 'L') text.pop_back();
      errno = 0;
      char* end = nullptr;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || end == nullptr || *end != '\0') return Bad("not an integer: " + text.substr(0, 40));
      PushInt(v, errno == ERANGE);
      return Status::Ok();
    }
    case 'J':
      LOCKSTEP_RETURN_IF_ERROR(Fixed(4, &n));
      PushInt(static_cast<int32_t>(n));
      return Status::Ok();
    case 'K':
      LOCKSTEP_RETURN_IF_ERROR(Fixed(1, &n));
      PushInt(static_cast<int64_t>(n));
      return Status::Ok();
    case 'M':
      LOCKSTEP_RETURN_IF_ERROR(Fixed(2, &n));
      PushInt(static_cast<int64_t>(n));
      return Status::Ok();
    case 0x8a:
    case 0x8b: {  // LONG1, LONG4: little-endian two's complement
      LOCKSTEP_RETURN_IF_ERROR(Counted(op == 0x8a ? 1 : 4, &text));
      uint64_t u = 0;
      const size_t len = std::min<size_t>(text.size(), 8);
      for (size_t k = len; k-- > 0;) u = (u << 8) | static_cast<uint8_t>(text[k]);
      if (len > 0 && len < 8 && ((u >> (8 * len - 1)) & 1)) u |= ~0ull << (8 * len);
      PushInt(static_cast<int64_t>(u), text.size() > 8);
      return Status::Ok();
    }
    case 'F': {
      LOCKSTEP_RETURN_IF_ERROR(Line(&text));
      a = New(Kind::kFloat);
      V(a).f = std::strtod(text.c_str(), nullptr);
      stack_.push_back(a);
      return Status::Ok();
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double
      if (!Need(8)) return Bad("truncated");
      uint64_t bits = 0;
      for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(p_[pos_ + static_cast<size_t>(k)]);
      pos_ += 8;
      a = New(Kind::kFloat);
      std::memcpy(&V(a).f, &bits, 8);
      stack_.push_back(a);
      return Status::Ok();
    }
    case 'S':
    case 'V': {  // STRING (a quoted repr), UNICODE (raw-unicode-escape): kept as written
      LOCKSTEP_RETURN_IF_ERROR(Line(&text));
      if (op == 'S' && text.size() >= 2 && (text[0] == '\'' || text[0] == '"')) text = text.substr(1, text.size() - 2);
      PushText(Kind::kString, text);
      return Status::Ok();
    }
    case 'T':
      LOCKSTEP_RETURN_IF_ERROR(Counted(4, &text));
      PushText(Kind::kString, text);
      return Status::Ok();
    case 'U':
      LOCKSTEP_RETURN_IF_ERROR(Counted(1, &text));
      PushText(Kind::kString, text);
      return Status::Ok();
    case 'X':
      LOCKSTEP_RETURN_IF_ERROR(Counted(4, &text));
      PushText(Kind::kString, text);
      return Status::Ok();
    case 0x8c:
      LOCKSTEP_RETURN_IF_ERROR(Counted(1, &text));
      PushText(Kind::kString, text);
      return Status::Ok();
    case 0x8d:
      LOCKSTEP_RETURN_IF_ERROR(Counted(8, &text));
      PushText(Kind::kString, text);
      return Status::Ok();
    case 'B':
      LOCKSTEP_RETURN_IF_ERROR(Counted(4, &text));
      PushText(Kind::kBytes, text);
      return Status::Ok();
    case 'C':
      LOCKSTEP_RETURN_IF_ERROR(Counted(1, &text));
      PushText(Kind::kBytes, text);
      return Status::Ok();
    case 0x8e:
    case 0x96:
      LOCKSTEP_RETURN_IF_ERROR(Counted(8, &text));
      PushText(Kind::kBytes, text);
      return Status::Ok();
    case ']':
      stack_.push_back(New(Kind::kList));
      return Status::Ok();
    case ')':
      stack_.push_back(New(Kind::kTuple));
      return Status::Ok();
    case '}':
      stack_.push_back(New(Kind::kDict));
      return Status::Ok();
    case 0x8f:
      stack_.push_back(New(Kind::kSet));
      return Status::Ok();
    case 'l':
      LOCKSTEP_RETURN_IF_ERROR(PopMark(&items));
      stack_.push_back(Sequence(Kind::kList, items));
      return Status::Ok();
    case 't':
      LOCKSTEP_RETURN_IF_ERROR(PopMark(&items));
      stack_.push_back(Sequence(Kind::kTuple, items));
      return Status::Ok();
    case 0x91:
      LOCKSTEP_RETURN_IF_ERROR(PopMark(&items));
      stack_.push_back(Sequence(Kind::kSet, items));
      return Status::Ok();
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      items.resize(static_cast<size_t>(op - 0x84));
      for (size_t k = items.size(); k-- > 0;) LOCKSTEP_RETURN_IF_ERROR(Pop(&items[k]));
      stack_.push_back(Sequence(Kind::kTuple, items));
      return Status::Ok();
    }
    case 'd':
      LOCKSTEP_RETURN_IF_ERROR(PopMark(&items));
      a = New(Kind::kDict);
      stack_.push_back(a);
      return SetItems(a, items);
    case 'a':
      LOCKSTEP_RETURN_IF_ERROR(Pop(&b));
      LOCKSTEP_RETURN_IF_ERROR(Top(&a));
      return Append(a, {b});
    case 'e':
    case 0x90:  // APPENDS, ADDITEMS
      LOCKSTEP_RETURN_IF_ERROR(PopMark(&items));
      LOCKSTEP_RETURN_IF_ERROR(Top(&a));
      return Append(a, items);
    case 's':
      LOCKSTEP_RETURN_IF_ERROR(Pop(&c));
      LOCKSTEP_RETURN_IF_ERROR(Pop(&b));
      LOCKSTEP_RETURN_IF_ERROR(Top(&a));
      return SetItems(a, {b, c});
    case 'u':
      LOCKSTEP_RETURN_IF_ERROR(PopMark(&items));
      LOCKSTEP_RETURN_IF_ERROR(Top(&a));
      return SetItems(a, items);
    case 'c':
      LOCKSTEP_RETURN_IF_ERROR(Line(&text));
      LOCKSTEP_RETURN_IF_ERROR(Line(&text2));
      return Global(text, text2);
    case 0x93:  // STACK_GLOBAL
      LOCKSTEP_RETURN_IF_ERROR(Pop(&b));
      LOCKSTEP_RETURN_IF_ERROR(Pop(&a));
      if (V(a).kind != Kind::kString || V(b).kind != Kind::kString) return Bad("STACK_GLOBAL of a non-string");
      return Global(V(a).s, V(b).s);
    case 'R':
    case 0x81:  // REDUCE, NEWOBJ: callable(*args)
      LOCKSTEP_RETURN_IF_ERROR(Pop(&b));
      LOCKSTEP_RETURN_IF_ERROR(Pop(&a));
      PushCall(a, b);
      return Status::Ok();
    case 0x92:  // NEWOBJ_EX: cls, args, kwargs
      LOCKSTEP_RETURN_IF_ERROR(Pop(&c));
      LOCKSTEP_RETURN_IF_ERROR(Pop(&b));
      LOCKSTEP_RETURN_IF_ERROR(Pop(&a));
      PushCall(a, b);
      return Status::Ok();
    case 'o':  // OBJ: MARK cls args...
      LOCKSTEP_RETURN_IF_ERROR(PopMark(&items));
      if (items.empty()) return Bad("OBJ without a class");
      a = items.front();
      items.erase(items.begin());
      PushCall(a, Sequence(Kind::kTuple, items));
      return Status::Ok();
    case 'i':  // INST: module and name lines, MARK args...
      LOCKSTEP_RETURN_IF_ERROR(Line(&text));
      LOCKSTEP_RETURN_IF_ERROR(Line(&text2));
      LOCKSTEP_RETURN_IF_ERROR(PopMark(&items));
      LOCKSTEP_RETURN_IF_ERROR(Global(text, text2));
      LOCKSTEP_RETURN_IF_ERROR(Pop(&a));
      PushCall(a, Sequence(Kind::kTuple, items));
      return Status::Ok();
    case 'b':  // BUILD: the object's state
      LOCKSTEP_RETURN_IF_ERROR(Pop(&b));
      LOCKSTEP_RETURN_IF_ERROR(Top(&a));
      if (V(a).kind == Kind::kCall) V(a).state = b;
      return Status::Ok();
    case 'P':
      LOCKSTEP_RETURN_IF_ERROR(Line(&text));
      PushText(Kind::kString, text);
      [[fallthrough]];
    case 'Q':  // BINPERSID
      LOCKSTEP_RETURN_IF_ERROR(Pop(&b));
      a = New(Kind::kPersistentId);
      V(a).items = {b};
      stack_.push_back(a);
      return Status::Ok();
    case 'p': {
      LOCKSTEP_RETURN_IF_ERROR(Line(&text));
      return Memo(std::strtoull(text.c_str(), nullptr, 10));
    }
    case 'q':
      LOCKSTEP_RETURN_IF_ERROR(Fixed(1, &n));
      return Memo(n);
    case 'r':
      LOCKSTEP_RETURN_IF_ERROR(Fixed(4, &n));
      return Memo(n);
    case 0x94:
      return Memo(memo_.size());
    case 'g': {
      LOCKSTEP_RETURN_IF_ERROR(Line(&text));
      return Recall(std::strtoull(text.c_str(), nullptr, 10));
    }
    case 'h':
      LOCKSTEP_RETURN_IF_ERROR(Fixed(1, &n));
      return Recall(n);
    case 'j':
      LOCKSTEP_RETURN_IF_ERROR(Fixed(4, &n));
      return Recall(n);
    case 0x82:
    case 0x83:
    case 0x84:  // EXT1, EXT2, EXT4: a registry code, never resolved
      LOCKSTEP_RETURN_IF_ERROR(Fixed(op == 0x82 ? 1 : op == 0x83 ? 2 : 4, &n));
      stack_.push_back(New(Kind::kOpaque));
      return Status::Ok();
    case 0x97:
      stack_.push_back(New(Kind::kOpaque));
      return Status::Ok();  // NEXT_BUFFER
    case 0x98:
      return Status::Ok();  // READONLY_BUFFER
    default: {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", op);
      return Bad(std::string("unknown opcode ") + hex);
    }
  }
}

}  // namespace

Status EvaluatePickle(const std::string& bytes, const std::string& origin, PickleData* out) {
  *out = PickleData();
  Machine machine(bytes, origin, &out->values_, &out->globals_);
  return machine.Run(&out->root_);
}

}  // namespace lockstep
