#include "formats/step_record.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "formats/base64.h"
#include "formats/checksum.h"

using nlohmann::json;

namespace lockstep {
namespace k = step_key;

bool GeneratorState::SameState(const GeneratorState& o) const {
  return size == o.size && xxh3_128 == o.xxh3_128 && extra == o.extra && raw == o.raw;
}

std::string FloatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08" PRIx32, bits);
  return buf;
}

bool ParseFloatBits(const std::string& text, float* out) {
  if (text.size() < 3 || text.size() > 10 || text.compare(0, 2, "0x") != 0 ||
      text.find_first_not_of("0123456789abcdefABCDEF", 2) != std::string::npos) {
    return false;
  }
  const uint32_t bits = static_cast<uint32_t>(std::strtoul(text.c_str() + 2, nullptr, 16));
  std::memcpy(out, &bits, sizeof(bits));
  return true;
}

// ---- Writing ----------------------------------------------------------------------------

namespace {

json StateJson(const GeneratorState& s) {
  if (!s.raw.empty()) return json::binary(s.raw);  // the log's encoder digests it
  json j = s.extra.is_object() ? s.extra : json::object();
  j[k::kStateSize] = s.size;
  j[k::kStateDigest] = s.xxh3_128;
  if (s.full()) j[k::kStateBase64] = s.base64;
  return j;
}

json SamplerJson(const SamplerPosition& p) {
  return {{"epoch", p.epoch}, {"micro_batch", p.micro_batch}, {"cursor", p.cursor}};
}

json OtherRanksRngJson(const std::vector<GeneratorStates>& ranks) {
  json j = json::array();
  for (const auto& r : ranks) j.push_back(GeneratorStatesJson(r));
  return j;
}

// Every field of `r` that it holds, by stored name; the batches and generator states given
// apart, so the moving form can move them.
json RecordJson(const StepRecord& r, json batches, json other_batches, json rng) {
  json j = r.other.is_object() ? r.other : json::object();
  j[k::kStep] = r.step;
  j[k::kBatches] = std::move(batches);
  j[k::kLoss] = r.loss;
  j[k::kLossBits] = FloatBits(r.loss);
  j[k::kLr] = r.lr;
  j[k::kGradNorm] = r.grad_norm;
  j[k::kGradNormBits] = FloatBits(r.grad_norm);
  if (r.epoch >= 0) j[k::kEpoch] = r.epoch;
  if (r.sampler) j[k::kSampler] = SamplerJson(*r.sampler);
  if (!rng.empty()) j[k::kRng] = std::move(rng);
  if (!other_batches.empty()) j[k::kBatchesOtherRanks] = std::move(other_batches);
  if (!r.rng_other_ranks.empty()) j[k::kRngOtherRanks] = OtherRanksRngJson(r.rng_other_ranks);
  if (r.resume_override) j[k::kResumeOverride] = true;
  if (r.wall_time) j[k::kWallTime] = *r.wall_time;
  return j;
}

}  // namespace

json GeneratorStatesJson(const GeneratorStates& states) {
  json j = json::object();
  for (const auto& [name, state] : states) j[name] = StateJson(state);
  return j;
}

json StepRecordJson(StepRecord&& r) {
  json rng = json::object();
  for (auto& [name, state] : r.rng) {
    rng[name] = state.raw.empty() ? StateJson(state) : json::binary(std::move(state.raw));  // moved, not copied
  }
  json batches = std::move(r.batches), others = std::move(r.batches_other_ranks);
  return RecordJson(r, std::move(batches), std::move(others), std::move(rng));
}

json StepRecordJson(const StepRecord& r) {
  return RecordJson(r, json(r.batches), json(r.batches_other_ranks), GeneratorStatesJson(r.rng));
}

json StepFieldJson(const StepRecord& r, const std::string& key) {
  // The common fields without building the whole record: readers ask for them per step.
  if (key == k::kStep) return r.step;
  if (key == k::kBatches) return r.batches;
  if (key == k::kLoss) return r.loss;
  if (key == k::kLossBits) return FloatBits(r.loss);
  if (key == k::kLr) return r.lr;
  if (key == k::kGradNorm) return r.grad_norm;
  if (key == k::kGradNormBits) return FloatBits(r.grad_norm);
  if (key == k::kEpoch) return r.epoch >= 0 ? json(r.epoch) : json();
  if (key == k::kSampler) return r.sampler ? SamplerJson(*r.sampler) : json();
  if (key == k::kRng) return r.rng.empty() ? json() : GeneratorStatesJson(r.rng);
  if (key == k::kBatchesOtherRanks) return r.batches_other_ranks.empty() ? json() : json(r.batches_other_ranks);
  if (key == k::kRngOtherRanks) return r.rng_other_ranks.empty() ? json() : OtherRanksRngJson(r.rng_other_ranks);
  if (key == k::kResumeOverride) return r.resume_override ? json(true) : json();
  if (key == k::kWallTime) return r.wall_time ? json(*r.wall_time) : json();
  return r.other.is_object() && r.other.contains(key) ? r.other[key] : json();
}

std::vector<std::string> StepFieldNames(const StepRecord& r) {
  std::vector<std::string> names;
  const json stored = StepRecordJson(r);  // items() refers to it: it must outlive the loop
  for (const auto& [key, value] : stored.items()) names.push_back(key);
  return names;
}

void DigestRawStates(StepRecord* r) {
  const auto digest = [](GeneratorStates* states) {
    for (auto& [name, s] : *states) {
      if (s.raw.empty()) continue;
      s.size = s.raw.size();
      s.xxh3_128 = Xxh3Hex(s.raw.data(), s.raw.size());
      s.raw.clear();
    }
  };
  digest(&r->rng);
  for (auto& rank : r->rng_other_ranks) digest(&rank);
}

GeneratorState DigestedState(const std::vector<uint8_t>& state, bool full) {
  GeneratorState s;
  s.size = state.size();
  s.xxh3_128 = Xxh3Hex(state.data(), state.size());
  if (full) s.base64 = Base64Encode(state);
  return s;
}

json DigestedStateJson(const std::vector<uint8_t>& state, bool full) { return StateJson(DigestedState(state, full)); }

GeneratorState GeneratorStateOf(std::vector<uint8_t> state, bool full) {
  if (full) return DigestedState(state, true);
  GeneratorState s;
  s.raw = std::move(state);
  return s;
}

// ---- Reading ----------------------------------------------------------------------------

namespace {

Status Wrong(const std::string& where, const std::string& field, const char* expected) {
  return Status::Corruption(where + ": field \"" + field + "\" is not " + expected);
}

Status ParseState(const json& j, const std::string& where, const std::string& field, GeneratorState* s) {
  if (!j.is_object()) return Wrong(where, field, "a generator state (an object)");
  for (const auto& [key, v] : j.items()) {
    if (key == k::kStateSize) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0) return Wrong(where, field + "." + key, "a byte count");
      s->size = v.get<uint64_t>();
    } else if (key == k::kStateDigest || key == k::kStateBase64) {
      if (!v.is_string()) return Wrong(where, field + "." + key, "a string");
      (key == k::kStateDigest ? s->xxh3_128 : s->base64) = v.get<std::string>();
    } else {
      if (s->extra.is_null()) s->extra = json::object();
      s->extra[key] = v;
    }
  }
  return Status::Ok();
}

Status ParseIds(const json& j, const std::string& where, const std::string& field, Batches* out) {
  if (!j.is_array()) return Wrong(where, field, "a list of micro-batches");
  out->reserve(j.size());
  for (const auto& batch : j) {
    if (!batch.is_array()) return Wrong(where, field, "a list of lists of sample ids");
    std::vector<int64_t> ids;
    ids.reserve(batch.size());
    for (const auto& id : batch) {
      if (!id.is_number_integer()) return Wrong(where, field, "a list of lists of integer sample ids");
      ids.push_back(id.get<int64_t>());
    }
    out->push_back(std::move(ids));
  }
  return Status::Ok();
}

// A float stored with its bits: the bits when they are there, else the number (null: NaN).
// The number beside the bits must be a number or null; the bits are what is compared.
Status ParseFloat(const json& stored, const char* key, const char* bits_key, const std::string& where, float* out) {
  const auto v = stored.find(key);
  float number = NAN;
  if (v != stored.end() && !v->is_null()) {
    if (!v->is_number()) return Wrong(where, key, "a number");
    number = v->get<float>();
  }
  const auto bits = stored.find(bits_key);
  if (bits == stored.end()) {
    *out = number;
    return Status::Ok();
  }
  if (!bits->is_string() || !ParseFloatBits(bits->get<std::string>(), out)) {
    return Wrong(where, bits_key, "a float's bits (\"0x\" and 8 hex digits)");
  }
  return Status::Ok();
}

Status ParseDouble(const json& v, const std::string& where, const char* key, double* out) {
  if (v.is_null()) {
    *out = NAN;
    return Status::Ok();
  }
  if (!v.is_number()) return Wrong(where, key, "a number");
  *out = v.get<double>();
  return Status::Ok();
}

Status ParseSampler(const json& j, const std::string& where, SamplerPosition* p) {
  const auto field = [&](const char* name, int64_t* out) {
    const auto v = j.is_object() ? j.find(name) : j.end();
    if (v == j.end() || !v->is_number_integer()) return false;
    *out = v->get<int64_t>();
    return true;
  };
  if (!j.is_object() || j.size() != 3 || !field("epoch", &p->epoch) || !field("micro_batch", &p->micro_batch) ||
      !field("cursor", &p->cursor)) {
    return Wrong(where, k::kSampler, "{\"epoch\", \"micro_batch\", \"cursor\"} as integers");
  }
  return Status::Ok();
}

Status ParseField(const std::string& key, const json& v, const json& stored, const std::string& where, StepRecord* r) {
  if (key == k::kKind || key == k::kStep || key == k::kLossBits || key == k::kGradNormBits) return Status::Ok();
  if (key == k::kLoss) return ParseFloat(stored, k::kLoss, k::kLossBits, where, &r->loss);
  if (key == k::kGradNorm) return ParseFloat(stored, k::kGradNorm, k::kGradNormBits, where, &r->grad_norm);
  if (key == k::kBatches) return ParseIds(v, where, key, &r->batches);
  if (key == k::kLr) return ParseDouble(v, where, k::kLr, &r->lr);
  if (key == k::kEpoch) {
    if (v.is_null()) return Status::Ok();  // a Python writer's non-finite epoch: not recorded
    return ParseDouble(v, where, k::kEpoch, &r->epoch);
  }
  if (key == k::kSampler) return ParseSampler(v, where, &r->sampler.emplace());
  if (key == k::kRng) return ParseGeneratorStates(v, where + ": rng", &r->rng);
  if (key == k::kResumeOverride) {
    if (!v.is_boolean()) return Wrong(where, key, "true or false");
    r->resume_override = v.get<bool>();
    return Status::Ok();
  }
  if (key == k::kWallTime) {
    if (!v.is_number()) return Wrong(where, key, "a number");
    r->wall_time = v.get<double>();
    return Status::Ok();
  }
  if (key == k::kBatchesOtherRanks || key == k::kRngOtherRanks) {
    if (!v.is_array()) return Wrong(where, key, "a list, one entry per rank after rank 0");
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string rank = where + ": " + key + "[" + std::to_string(i) + "]";
      if (key == k::kBatchesOtherRanks) {
        LOCKSTEP_RETURN_IF_ERROR(
            ParseIds(v[i], where, key + "[" + std::to_string(i) + "]", &r->batches_other_ranks.emplace_back()));
      } else {
        LOCKSTEP_RETURN_IF_ERROR(ParseGeneratorStates(v[i], rank, &r->rng_other_ranks.emplace_back()));
      }
    }
    return Status::Ok();
  }
  if (r->other.is_null()) r->other = json::object();
  r->other[key] = v;
  return Status::Ok();
}

}  // namespace

Status ParseGeneratorStates(const json& stored, const std::string& where, GeneratorStates* out) {
  out->clear();
  if (!stored.is_object()) return Status::Corruption(where + " is not an object of generator states");
  for (const auto& [name, state] : stored.items()) {
    LOCKSTEP_RETURN_IF_ERROR(ParseState(state, where, name, &(*out)[name]));
  }
  return Status::Ok();
}

Status ParseBatches(const json& stored, const std::string& where, Batches* out) {
  return ParseIds(stored, where, step_key::kBatches, out);
}

Status ParseStepRecord(const json& stored, const std::string& where, StepRecord* out) {
  *out = StepRecord();
  const auto step = stored.is_object() ? stored.find(k::kStep) : stored.end();
  if (step == stored.end() || !step->is_number_integer()) {
    return Status::Corruption(where + ": step record without an integer \"step\"");
  }
  out->step = step->get<int64_t>();
  const std::string at = where + ": step " + std::to_string(out->step);
  out->loss = out->grad_norm = NAN;  // unless the record holds them
  out->lr = NAN;
  for (const auto& [key, value] : stored.items()) LOCKSTEP_RETURN_IF_ERROR(ParseField(key, value, stored, at, out));
  if (!stored.contains(k::kLoss) && stored.contains(k::kLossBits)) {
    LOCKSTEP_RETURN_IF_ERROR(ParseFloat(stored, k::kLoss, k::kLossBits, at, &out->loss));
  }
  if (!stored.contains(k::kGradNorm) && stored.contains(k::kGradNormBits)) {
    LOCKSTEP_RETURN_IF_ERROR(ParseFloat(stored, k::kGradNorm, k::kGradNormBits, at, &out->grad_norm));
  }
  return Status::Ok();
}

Status DecodeFullState(const GeneratorState& saved, const std::string& where, std::vector<uint8_t>* state) {
  if (!saved.full() || !Base64Decode(saved.base64, state)) {
    return Status::Corruption(where + " is not a full generator state (no valid base64)");
  }
  if ((saved.size != 0 && saved.size != state->size()) ||
      (!saved.xxh3_128.empty() && saved.xxh3_128 != Xxh3Hex(state->data(), state->size()))) {
    return Status::Corruption(where + ": the generator state does not match its saved size and XXH3-128");
  }
  return Status::Ok();
}

Status DecodeFullState(const json& saved, const std::string& where, std::vector<uint8_t>* state) {
  GeneratorState s;
  if (!ParseState(saved, where, "state", &s).ok()) {
    return Status::Corruption(where + " is not a full generator state (no valid base64)");
  }
  return DecodeFullState(s, where, state);
}

}  // namespace lockstep
