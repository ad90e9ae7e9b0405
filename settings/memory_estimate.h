// How much memory a run needs, from its settings alone, so a model or batch that cannot
// fit is refused up front with the figure instead of running until the kernel kills it.
// No LibTorch here.
#pragma once

#include <cstdint>

#include "formats/status.h"
#include "settings/training_args.h"

namespace lockstep {

struct MemoryEstimate {
  double parameters = 0;        // the model's parameter count
  double state_bytes = 0;       // weights, gradients and AdamW's two moments (float32)
  double activation_bytes = 0;  // one micro-batch's forward and backward, roughly
  double data_bytes = 0;        // the generated train and eval splits
  double total() const { return state_bytes + activation_bytes + data_bytes; }
};

// An estimate within a small factor: what matters is refusing runs that are off by orders
// of magnitude (a hidden_size of 1e8), never refusing one that fits.
MemoryEstimate EstimateMemory(const TrainingArgs& args);

// Memory the system can give now (MemAvailable of /proc/meminfo), or 0 when unknown.
uint64_t AvailableMemoryBytes();

// InvalidArgument with the estimate and what is available when the run cannot fit in
// `available_bytes` (0: unknown, never refused).
Status CheckMemoryFits(const TrainingArgs& args, uint64_t available_bytes);

}  // namespace lockstep
