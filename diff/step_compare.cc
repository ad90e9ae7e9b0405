#include "diff/step_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <set>
#include <string>

using nlohmann::json;

namespace lockstep {
namespace {

// Cause before effect: where the data came from, the generators as the step began (a loop
// that draws its batches from them, as a Python loop may, parts there first), what was
// drawn, then what was computed. In a data-parallel job the other ranks' batches and
// generators are causes as rank 0's are; a job of another size differs first in them.
constexpr const char* kStepFieldOrder[] = {
    "step",      "sampler",        "rng",  "batches", "batches_other_ranks", "rng_other_ranks", "lr",
    "loss_bits", "grad_norm_bits", "epoch"};
// Decimal renderings of fields compared through their bits; never the first cause.
const std::set<std::string> kShadowFields = {"loss", "grad_norm", "wall_time", "kind"};

// Full RNG states appear on some steps only; the digest beside each is what identifies it.
json WithoutFullStates(json rng) {
  if (rng.is_object()) {
    for (auto& [name, generator] : rng.items()) {
      if (generator.is_object()) generator.erase("base64");
    }
  }
  return rng;
}

std::optional<Divergence> FieldDifference(int64_t step, const std::string& field, const json& a, const json& b) {
  const auto d = field == "rng" ? FirstJsonDifference(WithoutFullStates(a), WithoutFullStates(b), field)
                                : FirstJsonDifference(a, b, field);
  if (!d) return std::nullopt;
  return MakeDivergence(step, CauseOfStepField(d->path), "step log", d->path, Abbreviate(d->a), Abbreviate(d->b));
}

json ValueOr(const json& record, const std::string& key) {
  return record.contains(key) ? record[key] : json("(absent)");
}

}  // namespace

std::optional<Divergence> CompareStepRecords(const json& a, const json& b) {
  const int64_t step = a.value("step", int64_t{0});
  for (auto field = std::begin(kStepFieldOrder); field != std::end(kStepFieldOrder); ++field) {
    auto d = FieldDifference(step, *field, ValueOr(a, *field), ValueOr(b, *field));
    if (!d) continue;
    for (auto later = field + 1; later != std::end(kStepFieldOrder); ++later) {
      const auto e = FieldDifference(step, *later, ValueOr(a, *later), ValueOr(b, *later));
      const bool a_cause = e && (e->cause == cause::kData || e->cause == cause::kRng || e->cause == cause::kLr);
      if (a_cause && e->cause != d->cause && std::find(d->also.begin(), d->also.end(), e->cause) == d->also.end()) {
        d->also.push_back(e->cause);
      }
    }
    return d;
  }
  std::set<std::string> rest;
  for (const auto& [k, v] : a.items()) rest.insert(k);
  for (const auto& [k, v] : b.items()) rest.insert(k);
  for (const auto& k : rest) {
    if (kShadowFields.count(k) ||
        std::find(std::begin(kStepFieldOrder), std::end(kStepFieldOrder), k) != std::end(kStepFieldOrder)) {
      continue;
    }
    if (auto d = FieldDifference(step, k, ValueOr(a, k), ValueOr(b, k))) return d;
  }
  return std::nullopt;
}

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
