// The built-in models. Both report a summed loss so the trainer can scale micro-batches by
// the number of items (samples or tokens) in the whole accumulation window, as HF does with
// num_items_in_batch.
//
//   mlp: x[B, input_dim] -> Linear -> LayerNorm -> ReLU -> Dropout -> Linear -> logits[B, C]
//   gpt: tokens[B, T] -> wte + wpe -> Dropout -> n_layer x Block -> LayerNorm -> lm_head
//        -> logits[B, T, vocab]; Block = x + Attn(LN(x)), x + MLP(LN(x)), causal, with dropout
#pragma once

#include <torch/torch.h>

#include <memory>
#include <set>
#include <string>

#include "settings/training_args.h"

namespace lockstep {

struct BatchLoss {
  torch::Tensor loss_sum;  // scalar float32: sum of per-item cross-entropies
  int64_t items = 0;       // samples (mlp) or tokens (gpt)
  int64_t correct = -1;    // mlp: correctly classified samples; gpt: -1
};

class Model : public torch::nn::Module {
 public:
  // Loss of one batch. inputs/targets are on the model's device.
  virtual BatchLoss Loss(const torch::Tensor& inputs, const torch::Tensor& targets) = 0;
  // Names of parameters exempt from weight decay: biases and LayerNorm weights (HF's rule).
  std::set<std::string> NoDecayParameterNames();
};

std::shared_ptr<Model> MakeModel(const TrainingArgs& args);

}  // namespace lockstep
