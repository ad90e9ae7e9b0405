// The built-in models. Both report a summed loss so the trainer can scale micro-batches by
// the number of items (samples or tokens) in the whole accumulation window, as HF does with
// num_items_in_batch.
//
//   mlp: x[B, input_dim] -> Linear -> LayerNorm -> ReLU -> Dropout -> Linear -> logits[B, C]
//   gpt: tokens[B, T] -> wte + wpe -> Dropout -> n_layer x Block -> LayerNorm -> lm_head
//        -> logits[B, T, vocab]; Block = x + Attn(LN(x)), x + MLP(LN(x)), causal, with dropout
#pragma once

#include <torch/torch.h>

#include <functional>
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

// Sees each module's forward output, in execution order ("h.1.attn", "fc1"), and returns
// the tensor the model continues with: the output itself, or (testing only) a perturbed
// copy. `lockstep replay --trace-modules` records through it.
using ModuleTracer = std::function<torch::Tensor(const std::string& module, const torch::Tensor& output)>;

// Holds the tracer the model and its blocks share; empty when nothing traces.
struct TraceSlot {
  ModuleTracer tracer;
  torch::Tensor operator()(const std::string& module, const torch::Tensor& output) const {
    return tracer ? tracer(module, output) : output;
  }
};

class Model : public torch::nn::Module {
 public:
  // Traces every forward pass from now on; an empty function stops tracing.
  void SetTracer(ModuleTracer tracer) { trace_->tracer = std::move(tracer); }

  // Loss of one batch. inputs/targets are on the model's device.
  virtual BatchLoss Loss(const torch::Tensor& inputs, const torch::Tensor& targets) = 0;
  // Names of parameters exempt from weight decay: biases and LayerNorm weights (HF's rule).
  std::set<std::string> NoDecayParameterNames();

 protected:
  std::shared_ptr<TraceSlot> trace_ = std::make_shared<TraceSlot>();
};

std::shared_ptr<Model> MakeModel(const TrainingArgs& args);

}  // namespace lockstep
