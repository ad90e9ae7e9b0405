#include "trainer/world_invariant.h"

#include <torch/torch.h>

#include <mutex>

#include "recorder/generator_state.h"
#include "trainer/data_parallel.h"

namespace lockstep {
namespace {

// splitmix64's finalizer: spreads (seed, step, micro-batch, unit) over the 64 bits of a seed.
uint64_t Mix(uint64_t h, uint64_t v) {
  uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The default generators of the run's device, seeded for one unit; the rank's own states
// come back when this ends, so the run's generator stream never depends on which units a
// rank computed.
class UnitGenerators {
 public:
  explicit UnitGenerators(c10::Device device) {
    gens_.push_back(DefaultGenerator(c10::DeviceType::CPU));
    if (device.is_cuda()) gens_.push_back(DefaultGenerator(c10::DeviceType::CUDA));
    for (auto& g : gens_) saved_.push_back(GeneratorStateBytes(g));
  }
  ~UnitGenerators() {
    for (size_t i = 0; i < gens_.size(); ++i) SetGeneratorStateBytes(gens_[i], saved_[i]);
  }
  void Seed(uint64_t seed) {
    for (auto& g : gens_) {
      std::lock_guard<std::mutex> lock(g.mutex());
      g.set_current_seed(seed);
    }
  }

 private:
  std::vector<at::Generator> gens_;
  std::vector<std::vector<uint8_t>> saved_;
};

}  // namespace

void WorldInvariantStep::BeginWindow() {
  sum_ = torch::zeros({numel_ + 1}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
}

Status WorldInvariantStep::MicroBatch(int64_t step, int64_t m, const at::Tensor& ids,
                                      const std::function<at::Tensor(const at::Tensor&)>& unit_loss) {
  const std::vector<torch::Tensor>& params = tensors_;
  const int64_t n = ids.numel(), most = (plan_.Units(m) + plan_.world_size - 1) / plan_.world_size;
  const auto [first, end] = plan_.RankUnits(m);
  // Every rank sends `most` rows (a rank with fewer pads with zeros, never added).
  torch::Tensor rows = torch::zeros({most, numel_ + 1}, sum_.options());
  {
    UnitGenerators generators(device_);
    for (int64_t u = first; u < end; ++u) {
      generators.Seed(Mix(Mix(Mix(static_cast<uint64_t>(seed_), static_cast<uint64_t>(step)), static_cast<uint64_t>(m)),
                          static_cast<uint64_t>(u)));
      const int64_t at = u * plan_.unit;
      torch::Tensor loss = unit_loss(ids.narrow(0, at, std::min(plan_.unit, n - at)));
      const auto grads = torch::autograd::grad({loss}, params, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                               /*create_graph=*/false, /*allow_unused=*/true);
      torch::Tensor row = rows[u - first];
      int64_t offset = 0;
      for (size_t i = 0; i < params.size(); ++i) {
        const int64_t count = params[i].numel();
        if (grads[i].defined()) row.narrow(0, offset, count).copy_(grads[i].reshape({-1}));
        offset += count;
      }
      row[numel_].copy_(loss.detach());
    }
  }
  std::vector<torch::Tensor> all;
  LOCKSTEP_RETURN_IF_ERROR(job_->AllGather(rows, &all));
  // Global order: rank 0's units, then rank 1's, ...: the units in order, at any world size.
  StepPlan theirs = plan_;
  for (int64_t r = 0; r < plan_.world_size; ++r) {
    theirs.rank = r;
    const auto [from, to] = theirs.RankUnits(m);
    for (int64_t i = 0; i < to - from; ++i) sum_.add_(all[static_cast<size_t>(r)][i]);
  }
  return Status::Ok();
}

at::Tensor WorldInvariantStep::FinishWindow() {
  int64_t offset = 0;
  for (const auto& [name, p] : *params_) {
    const int64_t count = p.numel();
    torch::Tensor g = sum_.narrow(0, offset, count).view_as(p);
    if (p.grad().defined()) {
      p.mutable_grad().copy_(g);
    } else {
      p.mutable_grad() = g.clone();
    }
    offset += count;
  }
  return sum_[numel_].clone();
}

}  // namespace lockstep
