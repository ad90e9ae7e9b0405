#include "trainer/adamw.h"

#include <cmath>

namespace lockstep {

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, const std::set<std::string>& no_decay,
             const AdamWOptions& options)
    : params_(std::move(params)), no_decay_(no_decay), options_(options) {}

void AdamW::ZeroGrad() {
  for (auto& [name, p] : params_) {
    if (p.grad().defined()) p.mutable_grad().reset();  // set_to_none, as HF's zero_grad
  }
}

void AdamW::Step(double lr) {
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : params_) {
    if (!p.grad().defined()) continue;
    const torch::Tensor& g = p.grad();
    AdamWParamState& s = state_[name];
    if (!s.exp_avg.defined()) {
      s.exp_avg = torch::zeros_like(p, torch::MemoryFormat::Preserve);
      s.exp_avg_sq = torch::zeros_like(p, torch::MemoryFormat::Preserve);
    }
    s.step += 1;
    const double wd = decays(name) ? options_.weight_decay : 0.0;
    if (wd != 0.0) p.mul_(1.0 - lr * wd);
    s.exp_avg.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    s.exp_avg_sq.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    const double bias_correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(s.step));
    const double bias_correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(s.step));
    const double step_size = lr / bias_correction1;
    torch::Tensor denom = (s.exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options_.eps);
    p.addcdiv_(s.exp_avg, denom, -step_size);
  }
}

torch::Tensor ClipGradNorm(const std::vector<std::pair<std::string, torch::Tensor>>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& [name, p] : params) {
    if (p.grad().defined()) norms.push_back(p.grad().norm(2));
  }
  if (norms.empty()) return torch::zeros({}, torch::kFloat32);
  torch::Tensor total = torch::stack(norms).norm(2);
  if (max_norm > 0) {
    torch::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
    for (const auto& [name, p] : params) {
      if (p.grad().defined()) p.grad().mul_(coef);
    }
  }
  return total.to(torch::kCPU).to(torch::kFloat32);
}

}  // namespace lockstep
