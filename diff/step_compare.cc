#include "diff/step_compare.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "diff/run_diff.h"

using nlohmann::json;

namespace lockstep {

float BitsToFloat(const json& bits) {
  if (!bits.is_string()) return NAN;
  const std::string text = bits.get<std::string>();
  char* end = nullptr;
  const unsigned long long u = std::strtoull(text.c_str(), &end, 16);
  if (text.size() < 3 || text.compare(0, 2, "0x") != 0 || *end != '\0' || u > 0xffffffffull) return NAN;
  const uint32_t u32 = static_cast<uint32_t>(u);
  float f;
  std::memcpy(&f, &u32, 4);
  return f;
}

uint32_t FloatToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

bool FloatClose(float a, float b, const Tolerance& tol) {
  if (FloatToBits(a) == FloatToBits(b) || (std::isnan(a) && std::isnan(b))) return true;
  if (!std::isfinite(a) || !std::isfinite(b)) return false;
  const double diff = std::fabs(static_cast<double>(a) - b);
  if ((tol.atol || tol.rtol) && diff <= tol.atol.value_or(0) + tol.rtol.value_or(0) * std::fabs(b)) return true;
  return tol.ulp && UlpDistance(DType::kFloat32, FloatToBits(a), FloatToBits(b)) <= *tol.ulp;
}

void AlignGenerators(json* a, json* b) {
  if (!a->is_object() || !b->is_object() || !a->contains("rng") || !b->contains("rng") || !(*a)["rng"].is_object() ||
      !(*b)["rng"].is_object()) {
    return;
  }
  const json ra = (*a)["rng"], rb = (*b)["rng"];
  for (const auto& [name, state] : ra.items()) {
    if (!rb.contains(name)) (*a)["rng"].erase(name);
  }
  for (const auto& [name, state] : rb.items()) {
    if (!ra.contains(name)) (*b)["rng"].erase(name);
  }
}

namespace {

// What identifies a generator's state in a record: its digest (full states appear on some
// steps only, beside the same digest).
json StateIdentity(const json& generator) {
  return generator.is_object() && generator.contains("xxh3_128") ? generator["xxh3_128"] : generator;
}

}  // namespace

std::set<std::string> IdleGenerators(const StepLogContents& log) {
  std::vector<size_t> starts = {0};  // the first record of each process
  for (const auto& e : log.events) {
    if (e.record.value("kind", "") == "resume" && e.steps_before > starts.back()) starts.push_back(e.steps_before);
  }
  starts.push_back(log.records.size());
  std::map<std::string, bool> idle;  // name -> unmoved so far
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    if (starts[s + 1] - starts[s] < 2) return {};  // a process of one step: no evidence
    std::map<std::string, json> first;
    for (size_t i = starts[s]; i < starts[s + 1]; ++i) {
      const json& rng = log.records[i].contains("rng") ? log.records[i]["rng"] : json();
      if (!rng.is_object()) return {};
      for (const auto& [name, state] : rng.items()) {
        if (name == "sampler") continue;
        const auto [it, fresh] = first.emplace(name, StateIdentity(state));
        if (!idle.count(name)) idle[name] = true;
        if (!fresh && it->second != StateIdentity(state)) idle[name] = false;
      }
    }
    for (auto& [name, unmoved] : idle) unmoved = unmoved && first.count(name);
  }
  std::set<std::string> out;
  for (const auto& [name, unmoved] : idle) {
    if (unmoved) out.insert(name);
  }
  return out;
}

json TakeGenerators(const std::set<std::string>& names, json* record) {
  json taken = json::object();
  if (!record->is_object() || !record->contains("rng") || !(*record)["rng"].is_object()) return taken;
  for (const auto& name : names) {
    json& rng = (*record)["rng"];
    if (!rng.contains(name)) continue;
    taken[name] = rng[name];
    rng.erase(name);
  }
  return taken;
}

bool StepWithinTolerance(json a, json b, const Tolerance& tol) {
  if (!tol.any() || !a.is_object() || !b.is_object()) return false;
  for (const char* k : {"loss_bits", "grad_norm_bits"}) {
    if (!FloatClose(BitsToFloat(a.value(k, json())), BitsToFloat(b.value(k, json())), tol)) return false;
  }
  for (json* r : {&a, &b}) {
    for (const char* k : {"loss", "loss_bits", "grad_norm", "grad_norm_bits"}) r->erase(k);
  }
  return !CompareStepRecords(a, b);
}

json FloatDistance(float a, float b) {
  const double rel = b != 0 ? std::fabs(static_cast<double>(a) - b) / std::fabs(b) : INFINITY;
  const uint64_t ulp = UlpDistance(DType::kFloat32, FloatToBits(a), FloatToBits(b));
  return {{"reference", a},
          {"candidate", b},
          {"ulp_float32", ulp == UINT64_MAX ? json("nan") : json(ulp)},
          {"relative", std::isfinite(rel) ? json(rel) : json(nullptr)}};
}

json NumericsDetail(const json& a, const json& b) {
  json out = json::object();
  if (!a.is_object() || !b.is_object()) return out;
  for (const char* k : {"loss_bits", "grad_norm_bits"}) {
    const float fa = BitsToFloat(a.value(k, json())), fb = BitsToFloat(b.value(k, json()));
    if (FloatToBits(fa) != FloatToBits(fb)) out[std::string(k).substr(0, std::strlen(k) - 5)] = FloatDistance(fa, fb);
  }
  return out;
}

}  // namespace lockstep
