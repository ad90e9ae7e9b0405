#include "trainer/sampler.h"

#include "formats/step_record.h"
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

nlohmann::json EpochSampler::ToJson(int64_t updates_done_in_epoch) const {
  return {{"num_examples", num_examples_},
          {"seed", seed_},
          {"epoch", epoch_},
          {"updates_done_in_epoch", updates_done_in_epoch},
          {"generator_state_at_epoch_start", DigestedStateJson(state_at_epoch_start_, /*full=*/true)}};
}

Status EpochSampler::FromJson(const nlohmann::json& saved, const std::string& path, int64_t updates_per_epoch,
                              Position* resume_at) {
  const int64_t epoch = saved.at("epoch").get<int64_t>();
  const int64_t done = saved.at("updates_done_in_epoch").get<int64_t>();
  std::vector<uint8_t> state;
  LOCKSTEP_RETURN_IF_ERROR(
      DecodeFullState(saved.at("generator_state_at_epoch_start"), path + ": generator_state_at_epoch_start", &state));
  if (done < updates_per_epoch) {
    RestoreEpoch(epoch, state);
    *resume_at = {epoch, done, /*restored=*/true};
  } else {
    *resume_at = {epoch + 1, 0, /*restored=*/false};  // the checkpoint closed its epoch: the next begins afresh
  }
  return Status::Ok();
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
