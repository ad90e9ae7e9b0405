// Built-in datasets, generated deterministically in plain C++ (SplitMix64 + Box-Muller), so
// their bytes do not depend on LibTorch's RNG or version. Nothing is downloaded.
//
//   mlp: Gaussian clusters. inputs [N, input_dim] float32, targets [N] int64 in [0, num_labels)
//   gpt: token sequences from a fixed sparse Markov chain. inputs [N, block_size] int64,
//        targets [N, block_size] int64 (the inputs shifted by one token)
//
// Sample i of a split depends only on (task, split, i): growing the split keeps its prefix.
#pragma once

#include <torch/torch.h>

#include <string>

#include "settings/training_args.h"

namespace lockstep {

struct Dataset {
  torch::Tensor inputs;
  torch::Tensor targets;
  int64_t size() const { return inputs.size(0); }
};

struct DatasetPair {
  std::string name;  // "clusters" or "markov"
  Dataset train;
  Dataset eval;
  std::string digest;  // XXH3-128 over both splits: proves two runs saw the same data
};

DatasetPair MakeDatasets(const TrainingArgs& args);

}  // namespace lockstep
