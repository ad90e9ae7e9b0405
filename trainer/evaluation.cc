// The eval split's metrics (evaluation.h).
#include "trainer/evaluation.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace lockstep {

using nlohmann::json;

Status EvaluateModel(Model* model, const Dataset& eval, const TrainingArgs& args, c10::Device device,
                     DataParallelJob* job, const std::function<double()>& now, json* metrics) {
  const double t0 = now();
  model->eval();
  torch::NoGradGuard no_grad;
  double loss_sum = 0.0;
  int64_t items = 0, correct = 0, evaluated = 0;
  const int64_t n = eval.size(), bs = args.per_device_eval_batch_size;
  // Rank r takes batches r, r + world, ...; the sums over the ranks are the metrics of the
  // whole split, as HF's gather gives them. dataloader_drop_last drops a short last batch here too.
  for (int64_t start = job->rank() * bs; start < n; start += bs * job->world()) {
    const int64_t count = std::min(bs, n - start);
    if (count < bs && args.dataloader_drop_last) break;
    BatchLoss b =
        model->Loss(eval.inputs.narrow(0, start, count).to(device), eval.targets.narrow(0, start, count).to(device));
    loss_sum += b.loss_sum.item<double>();
    items += b.items;
    correct += std::max<int64_t>(0, b.correct);
    evaluated += count;
  }
  model->train();
  std::vector<double> sums = {loss_sum, static_cast<double>(items), static_cast<double>(correct),
                              static_cast<double>(evaluated)};
  LOCKSTEP_RETURN_IF_ERROR(job->SumOverRanks(&sums));
  loss_sum = sums[0];
  items = static_cast<int64_t>(sums[1]);
  correct = static_cast<int64_t>(sums[2]);
  evaluated = static_cast<int64_t>(sums[3]);
  // HF's speed_metrics("eval"): the split's samples and ceil(samples / total batch) steps,
  // rounded as it rounds them.
  const auto round_to = [](double v, double scale) { return std::round(v * scale) / scale; };
  const double runtime = std::max(now() - t0, 1e-9);
  const double steps = std::ceil(static_cast<double>(n) / static_cast<double>(bs * job->world()));
  json m = {{"eval_runtime", round_to(runtime, 1e4)},
            {"eval_samples_per_second", round_to(static_cast<double>(n) / runtime, 1e3)},
            {"eval_steps_per_second", round_to(steps / runtime, 1e3)}};
  // No batch evaluated (all dropped): HF reports no loss and no metric.
  if (items > 0) m["eval_loss"] = loss_sum / static_cast<double>(items);
  if (args.model == "mlp" && evaluated > 0) {
    m["eval_accuracy"] = static_cast<double>(correct) / static_cast<double>(evaluated);
  }
  *metrics = std::move(m);
  return Status::Ok();
}

}  // namespace lockstep
