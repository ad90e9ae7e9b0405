// The module trace of one step (step_observer.h): a tracer on the model from the step's
// first forward until its gradients are averaged, then every gradient, before clipping
// scales them.
#include <torch/torch.h>

#include <cmath>

#include "formats/module_trace.h"
#include "trainer/models.h"
#include "trainer/step_observer.h"

namespace lockstep {
namespace {

class OneStepTrace : public StepObserver {
 public:
  OneStepTrace(std::shared_ptr<Model> model, int64_t step, std::function<void(const nlohmann::json&)> on_trace,
               std::string fault_module)
      : model_(std::move(model)), step_(step), on_trace_(std::move(on_trace)), fault_(std::move(fault_module)) {}

  Status StepBegins(StepWork* w) override {
    if (w->step != step_) return Status::Ok();
    model_->SetTracer([this](const std::string& module, const torch::Tensor& out) {
      const torch::Tensor result = module == fault_ ? out * (1.0 + std::ldexp(1.0, -23)) : out;
      torch::Tensor c = result.detach().to(torch::kCPU, torch::kFloat32).contiguous();
      on_trace_(ModuleTraceEntry("forward", module, micro_batch_, c.sizes().vec(), c.data_ptr<float>(),
                                 static_cast<size_t>(c.numel())));
      return result;
    });
    return Status::Ok();
  }

  void MicroBatchBegins(const StepWork& /*w*/, int64_t k) override { micro_batch_ = k; }

  void GradientsReady(const StepWork& w) override {
    if (w.step != step_) return;
    model_->SetTracer(nullptr);
    for (const auto& p : model_->named_parameters()) {
      if (!p.value().grad().defined()) continue;
      torch::Tensor g = p.value().grad().detach().to(torch::kCPU, torch::kFloat32).contiguous();
      on_trace_(
          ModuleTraceEntry("grad", p.key(), -1, g.sizes().vec(), g.data_ptr<float>(), static_cast<size_t>(g.numel())));
    }
  }

 private:
  std::shared_ptr<Model> model_;
  int64_t step_;
  std::function<void(const nlohmann::json&)> on_trace_;
  std::string fault_;
  int64_t micro_batch_ = 0;
};

}  // namespace

std::unique_ptr<StepObserver> MakeModuleTracer(std::shared_ptr<Model> model, int64_t step,
                                               std::function<void(const nlohmann::json&)> on_trace,
                                               std::string fault_module) {
  return std::make_unique<OneStepTrace>(std::move(model), step, std::move(on_trace), std::move(fault_module));
}

}  // namespace lockstep
