#include "diff/step_compare.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include "formats/json_file.h"

using nlohmann::json;

namespace lockstep {
namespace {
namespace k = step_key;

// Cause before effect: where the data came from, the generators as the step began (a loop
// that draws its batches from them, as a Python loop may, parts there first), what was
// drawn, then what was computed. In a data-parallel job the other ranks' batches and
// generators are causes as rank 0's are; a job of another size differs first in them.
// The decimal renderings of loss and grad_norm are compared through their bits, and
// wall_time never: any other field a record holds comes after these.
constexpr const char* kStepFieldOrder[] = {
    k::kStep,          k::kSampler, k::kRng,      k::kBatches,      k::kBatchesOtherRanks,
    k::kRngOtherRanks, k::kLr,      k::kLossBits, k::kGradNormBits, k::kEpoch};

bool SameStates(const GeneratorStates& a, const GeneratorStates& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
           return x.first == y.first && x.second.SameState(y.second);
         });
}

bool SameDouble(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

// Whether `a` and `b` agree in `key`, typed: the fast path, taken for every step.
bool SameField(const StepRecord& a, const StepRecord& b, const std::string& key) {
  if (key == k::kStep) return a.step == b.step;
  if (key == k::kSampler) return a.sampler == b.sampler;
  if (key == k::kRng) return SameStates(a.rng, b.rng);
  if (key == k::kBatches) return a.batches == b.batches;
  if (key == k::kBatchesOtherRanks) return a.batches_other_ranks == b.batches_other_ranks;
  if (key == k::kRngOtherRanks) {
    return a.rng_other_ranks.size() == b.rng_other_ranks.size() &&
           std::equal(a.rng_other_ranks.begin(), a.rng_other_ranks.end(), b.rng_other_ranks.begin(), SameStates);
  }
  if (key == k::kLr) return SameDouble(a.lr, b.lr);
  if (key == k::kLossBits) return FloatToBits(a.loss) == FloatToBits(b.loss);
  if (key == k::kGradNormBits) return FloatToBits(a.grad_norm) == FloatToBits(b.grad_norm);
  if (key == k::kEpoch) return a.epoch == b.epoch;
  return StepFieldJson(a, key) == StepFieldJson(b, key);
}

// Full RNG states appear on some steps only; the digest beside each is what identifies it.
void DropFullStates(json* states) {
  if (states->is_object()) {
    for (auto& [name, generator] : states->items()) {
      if (generator.is_object()) generator.erase(k::kStateBase64);
    }
  }
}

// A field as the difference names it: "(absent)" where the record lacks it.
json Shown(const StepRecord& r, const std::string& key) {
  json v = StepFieldJson(r, key);
  if (v.is_null()) return "(absent)";
  if (key == k::kRng) DropFullStates(&v);
  if (key == k::kRngOtherRanks) {
    for (auto& rank : v) DropFullStates(&rank);
  }
  return v;
}

std::optional<Divergence> FieldDifference(const StepRecord& a, const StepRecord& b, const std::string& key) {
  if (SameField(a, b, key)) return std::nullopt;
  const json shown_a = Shown(a, key), shown_b = Shown(b, key);
  const auto d = FirstJsonDifference(shown_a, shown_b, key);
  // The typed values differ: a difference their JSON cannot place is the field's own.
  const JsonDifference where = d ? *d : JsonDifference{key, shown_a, shown_b};
  return MakeDivergence(a.step, CauseOfStepField(where.path), "step log", where.path, Abbreviate(where.a),
                        Abbreviate(where.b));
}

// The fields after the ordered ones: the others either record holds, and resume_override.
std::set<std::string> RestOf(const StepRecord& a, const StepRecord& b) {
  std::set<std::string> rest;
  for (const StepRecord* r : {&a, &b}) {
    if (r->other.is_object()) {
      for (const auto& [key, v] : r->other.items()) rest.insert(key);
    }
    if (r->resume_override) rest.insert(k::kResumeOverride);
  }
  return rest;
}

}  // namespace

std::optional<Divergence> CompareStepRecords(const StepRecord& a, const StepRecord& b) {
  for (auto field = std::begin(kStepFieldOrder); field != std::end(kStepFieldOrder); ++field) {
    auto d = FieldDifference(a, b, *field);
    if (!d) continue;
    for (auto later = field + 1; later != std::end(kStepFieldOrder); ++later) {
      const auto e = FieldDifference(a, b, *later);
      const bool a_cause = e && (e->cause == cause::kData || e->cause == cause::kRng || e->cause == cause::kLr);
      if (a_cause && e->cause != d->cause && std::find(d->also.begin(), d->also.end(), e->cause) == d->also.end()) {
        d->also.push_back(e->cause);
      }
    }
    return d;
  }
  for (const auto& key : RestOf(a, b)) {
    if (auto d = FieldDifference(a, b, key)) return d;
  }
  return std::nullopt;
}

float BitsToFloat(const json& bits) {
  float f = NAN;
  if (!bits.is_string() || !ParseFloatBits(bits.get<std::string>(), &f)) return NAN;
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

void AlignGenerators(StepRecord* a, StepRecord* b) {
  if (a->rng.empty() || b->rng.empty()) return;
  for (auto it = a->rng.begin(); it != a->rng.end();) it = b->rng.count(it->first) ? std::next(it) : a->rng.erase(it);
  for (auto it = b->rng.begin(); it != b->rng.end();) it = a->rng.count(it->first) ? std::next(it) : b->rng.erase(it);
}

namespace {

// What identifies a generator's state in a record: its digest (full states appear on some
// steps only, beside the same digest).
std::string StateIdentity(const GeneratorState& s) {
  return s.xxh3_128.empty() ? std::to_string(s.size) + " " + DumpJson(s.extra) : s.xxh3_128;
}

}  // namespace

std::set<std::string> IdleGenerators(const StepLogContents& log, size_t rank) {
  static const GeneratorStates kNone;
  const auto states_of = [rank](const StepRecord& r) -> const GeneratorStates& {
    if (rank == 0) return r.rng;
    return rank <= r.rng_other_ranks.size() ? r.rng_other_ranks[rank - 1] : kNone;
  };
  std::vector<size_t> starts = {0};  // the first record of each process
  for (const auto& e : log.events) {
    if (e.record.value(k::kKind, "") == event_key::kResume && e.steps_before > starts.back())
      starts.push_back(e.steps_before);
  }
  starts.push_back(log.records.size());
  std::map<std::string, bool> idle;  // name -> unmoved so far
  for (size_t s = 0; s + 1 < starts.size(); ++s) {
    if (starts[s + 1] - starts[s] < 2) return {};  // a process of one step: no evidence
    std::map<std::string, std::string> first;
    for (size_t i = starts[s]; i < starts[s + 1]; ++i) {
      const GeneratorStates& rng = states_of(log.records[i]);
      if (rng.empty()) return {};
      for (const auto& [name, state] : rng) {
        if (name == k::kSamplerGenerator) continue;
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

GeneratorStates TakeGenerators(const std::set<std::string>& names, GeneratorStates* states) {
  GeneratorStates taken;
  for (const auto& name : names) {
    const auto it = states->find(name);
    if (it == states->end()) continue;
    taken.insert(states->extract(it));
  }
  return taken;
}

bool StepWithinTolerance(StepRecord a, StepRecord b, const Tolerance& tol) {
  if (!tol.any()) return false;
  if (!FloatClose(a.loss, b.loss, tol) || !FloatClose(a.grad_norm, b.grad_norm, tol)) return false;
  b.loss = a.loss;
  b.grad_norm = a.grad_norm;
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

json NumericsDetail(const StepRecord& a, const StepRecord& b) {
  json out = json::object();
  if (FloatToBits(a.loss) != FloatToBits(b.loss)) out[k::kLoss] = FloatDistance(a.loss, b.loss);
  if (FloatToBits(a.grad_norm) != FloatToBits(b.grad_norm)) out[k::kGradNorm] = FloatDistance(a.grad_norm, b.grad_norm);
  return out;
}

}  // namespace lockstep
