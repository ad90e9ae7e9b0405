// The run's generators as a piece of training state: what a step record says of them as
// the step begins, and what rng_state.json saves and restores (the global CPU generator,
// and the CUDA one on a GPU; the sampler's generator is saved with its position in
// sampler.json). Internal to trainer/.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/step_record.h"

namespace lockstep {

class EpochSampler;

class RunGenerators {
 public:
  // `sampler` must outlive this; `cuda` says whether the run's device is a GPU.
  RunGenerators(const EpochSampler* sampler, bool cuda) : sampler_(sampler), cuda_(cuda) {}

  // The generator states as a step begins: whole (`full`, to replay from) or as digests.
  // `raw` leaves the CPU state unhashed, for the step log's encoder to hash off the loop
  // (StepLogWriter::Append). The sampler's entry is its epoch's starting state, hashed once
  // per epoch.
  GeneratorStates States(bool full, bool raw = true);

  // rng_state.json: the global generators, whole.
  nlohmann::json ToJson();
  // Restores the global generators from rng_state.json. `cuda_optional`: a file without a
  // CUDA state (a CPU run replayed on a GPU) leaves the CUDA generator as it is; otherwise
  // that is Corruption naming `path`, as is any malformed state.
  Status FromJson(const nlohmann::json& saved, const std::string& path, bool cuda_optional);

 private:
  const EpochSampler* sampler_;
  bool cuda_;
  GeneratorState sampler_state_;  // States' sampler entry, kept for its epoch
  int64_t sampler_state_epoch_ = -1;
};

}  // namespace lockstep
