// AdamW, written out (as llm.c does) rather than torch::optim::AdamW, so that its state is a
// plain set of named tensors that checkpoints save and restore exactly, with one code path
// for LibTorch 1.13 and 2.x. Same update as torch.optim.AdamW (non-amsgrad):
//
//   p  *= 1 - lr * wd
//   m   = b1 * m + (1 - b1) * g ;  v = b2 * v + (1 - b2) * g^2
//   p  -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#pragma once

#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace lockstep {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

struct AdamWParamState {
  torch::Tensor exp_avg;     // first moment, like the parameter
  torch::Tensor exp_avg_sq;  // second moment, like the parameter
  int64_t step = 0;          // updates this parameter has received
};

class AdamW {
 public:
  // `no_decay` names the parameters exempt from weight decay (HF's decay groups).
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, const std::set<std::string>& no_decay,
        const AdamWOptions& options);

  // One update with learning rate `lr`; parameters without a gradient are skipped.
  void Step(double lr);
  void ZeroGrad();

  const std::vector<std::pair<std::string, torch::Tensor>>& params() const { return params_; }
  std::map<std::string, AdamWParamState>& state() { return state_; }
  bool decays(const std::string& name) const { return no_decay_.count(name) == 0; }

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::set<std::string> no_decay_;
  AdamWOptions options_;
  std::map<std::string, AdamWParamState> state_;
};

// Clips gradients to total L2 norm `max_norm` (skipped when max_norm <= 0) as
// torch.nn.utils.clip_grad_norm_ does, and returns the total norm before clipping (float32).
torch::Tensor ClipGradNorm(const std::vector<std::pair<std::string, torch::Tensor>>& params, double max_norm);

}  // namespace lockstep
