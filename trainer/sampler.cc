#include "trainer/sampler.h"

#include "trainer/torch_bridge.h"

namespace lockstep {

EpochSampler::EpochSampler(int64_t num_examples, int64_t seed)
    : num_examples_(num_examples), seed_(seed), generator_(at::detail::createCPUGenerator()) {}

void EpochSampler::BeginEpoch(int64_t epoch) {
  {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_current_seed(static_cast<uint64_t>(seed_ + epoch));
  }
  epoch_ = epoch;
  state_at_epoch_start_ = GeneratorStateBytes(generator_);
  Draw();
}

void EpochSampler::RestoreEpoch(int64_t epoch, const std::vector<uint8_t>& state_at_epoch_start) {
  SetGeneratorStateBytes(generator_, state_at_epoch_start);
  epoch_ = epoch;
  state_at_epoch_start_ = state_at_epoch_start;
  Draw();
}

void EpochSampler::Draw() {
  perm_ = torch::randperm(num_examples_, generator_, torch::TensorOptions().dtype(torch::kInt64));
}

torch::Tensor EpochSampler::Ids(int64_t start, int64_t count) const { return perm_.narrow(0, start, count); }

torch::Tensor EpochSampler::IdsAt(const std::vector<int64_t>& positions) const {
  const torch::Tensor at = torch::tensor(positions, torch::TensorOptions().dtype(torch::kInt64));
  return perm_.index_select(0, at);
}

}  // namespace lockstep
