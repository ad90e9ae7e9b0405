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
