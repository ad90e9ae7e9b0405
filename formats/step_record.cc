#include "formats/step_record.h"

#include "formats/base64.h"
#include "formats/checksum.h"
#include "formats/step_log.h"

namespace lockstep {

nlohmann::json DigestedStateJson(const std::vector<uint8_t>& state, bool full) {
  nlohmann::json j = {{"size", state.size()}, {"xxh3_128", Xxh3Hex(state.data(), state.size())}};
  if (full) j["base64"] = Base64Encode(state);
  return j;
}

Status DecodeFullState(const nlohmann::json& saved, const std::string& where, std::vector<uint8_t>* state) {
  const auto b64 = saved.is_object() ? saved.find("base64") : saved.end();
  if (b64 == saved.end() || !b64->is_string() || !Base64Decode(b64->get<std::string>(), state)) {
    return Status::Corruption(where + " is not a full generator state (no valid base64)");
  }
  const auto size = saved.find("size"), digest = saved.find("xxh3_128");
  if ((size != saved.end() && (!size->is_number_unsigned() || size->get<uint64_t>() != state->size())) ||
      (digest != saved.end() && (!digest->is_string() || *digest != Xxh3Hex(state->data(), state->size())))) {
    return Status::Corruption(where + ": the generator state does not match its saved size and XXH3-128");
  }
  return Status::Ok();
}

nlohmann::json GeneratorStateJson(std::vector<uint8_t> state, bool full) {
  return full ? DigestedStateJson(state, true) : nlohmann::json::binary(std::move(state));
}

nlohmann::json StepRecordJson(StepRecord&& r) {
  nlohmann::json j = {{"step", r.step},
                      {"batches", std::move(r.batches)},
                      {"loss", r.loss},
                      {"loss_bits", FloatBits(r.loss)},
                      {"lr", r.lr},
                      {"grad_norm", r.grad_norm},
                      {"grad_norm_bits", FloatBits(r.grad_norm)}};
  if (r.epoch >= 0) j["epoch"] = r.epoch;
  if (!r.sampler.is_null()) j["sampler"] = std::move(r.sampler);
  if (!r.rng.is_null()) j["rng"] = std::move(r.rng);
  if (r.resume_override) j["resume_override"] = true;
  if (r.wall_time) j["wall_time"] = *r.wall_time;
  return j;
}

}  // namespace lockstep
