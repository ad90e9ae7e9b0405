#include "trainer/run_generators.h"

#include <torch/torch.h>

#include <cstring>

#include "trainer/sampler.h"
#include "trainer/torch_bridge.h"

namespace lockstep {
namespace {

// CUDA generator state (LibTorch 2.x): 8 bytes seed, 8 bytes Philox offset.
GeneratorState CudaState(const std::vector<uint8_t>& state, bool full) {
  GeneratorState s = DigestedState(state, full);
  if (state.size() == 16) {
    uint64_t seed, offset;
    std::memcpy(&seed, state.data(), 8);
    std::memcpy(&offset, state.data() + 8, 8);
    s.extra = {{"seed", seed}, {"offset", offset}};
  }
  return s;
}

}  // namespace

GeneratorStates RunGenerators::States(bool full, bool raw) {
  if (full || sampler_state_epoch_ != sampler_->epoch()) {
    sampler_state_ = DigestedState(sampler_->state_at_epoch_start(), full);
    sampler_state_epoch_ = full ? -1 : sampler_->epoch();
  }
  std::vector<uint8_t> cpu = GeneratorStateBytes(DefaultGenerator(torch::kCPU));
  GeneratorStates rng = {{step_key::kCpu, raw ? GeneratorStateOf(std::move(cpu), full) : DigestedState(cpu, full)},
                         {step_key::kSamplerGenerator, sampler_state_}};
  if (cuda_) rng[step_key::kCuda] = CudaState(GeneratorStateBytes(DefaultGenerator(torch::kCUDA)), full);
  return rng;
}

nlohmann::json RunGenerators::ToJson() {
  GeneratorStates rng = States(/*full=*/true);
  rng.erase(step_key::kSamplerGenerator);  // kept, with its position, in sampler.json
  return GeneratorStatesJson(rng);
}

Status RunGenerators::FromJson(const nlohmann::json& saved, const std::string& path, bool cuda_optional) {
  std::vector<uint8_t> cpu_state;
  LOCKSTEP_RETURN_IF_ERROR(DecodeFullState(saved.at(step_key::kCpu), path + ": cpu", &cpu_state));
  SetGeneratorStateBytes(DefaultGenerator(torch::kCPU), cpu_state);
  if (!cuda_) return Status::Ok();
  if (!saved.contains(step_key::kCuda)) {
    return cuda_optional ? Status::Ok() : Status::Corruption(path + ": no CUDA generator state for a CUDA run");
  }
  std::vector<uint8_t> cuda_state;
  LOCKSTEP_RETURN_IF_ERROR(DecodeFullState(saved.at(step_key::kCuda), path + ": cuda", &cuda_state));
  SetGeneratorStateBytes(DefaultGenerator(torch::kCUDA), cuda_state);
  return Status::Ok();
}

}  // namespace lockstep
