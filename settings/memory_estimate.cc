#include "settings/memory_estimate.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

namespace lockstep {
namespace {

double MlpParameters(const TrainingArgs& a) {
  const double in = a.input_dim, h = a.hidden_size, c = a.num_labels;
  return in * h + h + 2 * h + h * c + c;  // fc1, norm, fc2
}

double GptParameters(const TrainingArgs& a) {
  const double v = a.vocab_size, t = a.block_size, e = a.n_embd, l = a.n_layer;
  const double block = 4 * e + (3 * e * e + 3 * e) + (e * e + e) + (4 * e * e + 4 * e) + (4 * e * e + e);
  return v * e + t * e + 2 * e + e * v + l * block;  // wte, wpe, ln_f, lm_head, blocks
}

std::string GiB(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace

MemoryEstimate EstimateMemory(const TrainingArgs& a) {
  MemoryEstimate m;
  const double batch = static_cast<double>(std::min(a.per_device_train_batch_size, a.train_samples));
  const double samples = static_cast<double>(a.train_samples) + static_cast<double>(a.eval_samples);
  if (a.model == "gpt") {
    m.parameters = GptParameters(a);
    const double t = a.block_size, e = a.n_embd, l = a.n_layer;
    // Per token: about 16 floats of width n_embd per layer kept for backward, the attention
    // matrix (n_head x T per token, three copies) and the logits (three copies).
    m.activation_bytes = 4.0 * batch * t * (16 * e * l + 3.0 * a.n_head * t * l + 3.0 * a.vocab_size);
    m.data_bytes = samples * t * 2 * 8;  // inputs and targets, int64
  } else {
    m.parameters = MlpParameters(a);
    m.activation_bytes = 4.0 * batch * (a.input_dim + 6.0 * a.hidden_size + 3.0 * a.num_labels);
    m.data_bytes = samples * (4.0 * a.input_dim + 8);
  }
  m.state_bytes = 16.0 * m.parameters;  // weight, grad, exp_avg, exp_avg_sq
  return m;
}

uint64_t AvailableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

Status CheckMemoryFits(const TrainingArgs& args, uint64_t available_bytes) {
  const MemoryEstimate m = EstimateMemory(args);
  if (available_bytes == 0 || m.total() <= static_cast<double>(available_bytes)) return Status::Ok();
  char params[32];
  std::snprintf(params, sizeof(params), "%.3g", m.parameters);
  return Status::InvalidArgument(
      "this run needs about " + GiB(m.total()) + " of memory (" + params + " parameters: " + GiB(m.state_bytes) +
      " for weights, gradients and AdamW state; " + GiB(m.activation_bytes) + " for a micro-batch's activations; " +
      GiB(m.data_bytes) + " for the data), but " + GiB(static_cast<double>(available_bytes)) +
      " is available: make the model (hidden_size, n_embd, n_layer, vocab_size) or the batch smaller");
}

}  // namespace lockstep
