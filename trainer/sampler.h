// EpochSampler: the random order of the training set, one permutation per epoch, drawn
// from a dedicated torch CPU generator seeded with data_seed + epoch (as accelerate's
// SeedableRandomSampler does). Its position is (epoch, cursor) plus the generator state at
// the epoch's start, so a resume restores it in O(1) draws: no batch is ever replayed.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

class EpochSampler {
 public:
  EpochSampler(int64_t num_examples, int64_t seed);

  // Seeds the generator for `epoch`, remembers its state, and draws the permutation.
  void BeginEpoch(int64_t epoch);

  // Re-creates epoch `epoch` from a saved generator state (the resume path).
  void RestoreEpoch(int64_t epoch, const std::vector<uint8_t>& state_at_epoch_start);

  // Sample ids perm[start, start + count) of the current epoch, as an int64 tensor [count].
  torch::Tensor Ids(int64_t start, int64_t count) const;
  // Sample ids at `positions` of the current epoch's permutation (a data-parallel shard).
  torch::Tensor IdsAt(const std::vector<int64_t>& positions) const;

  // Where a resumed loop starts: the epoch, its first update, and whether that epoch's
  // permutation was restored (else the loop begins the epoch afresh).
  struct Position {
    int64_t epoch = 0, update = 0;
    bool restored = false;
  };

  // sampler.json, the sampler's own checkpoint file: the epoch, how many of its updates
  // the loop had done, and the generator state at its start (a resume costs one draw).
  nlohmann::json ToJson(int64_t updates_done_in_epoch) const;

  // Restores what ToJson saved and says where the loop resumes: inside the saved epoch, or
  // at the start of the next when all `updates_per_epoch` of its updates were done.
  // Corruption naming `path` for a state that is not base64.
  Status FromJson(const nlohmann::json& saved, const std::string& path, int64_t updates_per_epoch, Position* resume_at);

  int64_t epoch() const { return epoch_; }
  int64_t seed() const { return seed_; }
  const std::vector<uint8_t>& state_at_epoch_start() const { return state_at_epoch_start_; }

 private:
  void Draw();

  int64_t num_examples_;
  int64_t seed_;
  int64_t epoch_ = -1;
  at::Generator generator_;
  std::vector<uint8_t> state_at_epoch_start_;
  torch::Tensor perm_;  // [num_examples] int64
};

}  // namespace lockstep
