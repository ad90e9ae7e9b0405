#include "formats/rotation.h"

#include <algorithm>

namespace lockstep {

std::vector<int64_t> CheckpointsToDelete(std::vector<int64_t> steps, int64_t best_step, int64_t save_total_limit) {
  if (save_total_limit <= 0 || static_cast<int64_t>(steps.size()) <= save_total_limit) return {};
  std::sort(steps.begin(), steps.end());
  const auto best = std::find(steps.begin(), steps.end(), best_step);
  if (best_step != kNoBestStep && best != steps.end()) {
    // Bubble the best checkpoint up to second-to-last, as HF's _sorted_checkpoints does.
    for (size_t i = best - steps.begin(); i + 2 < steps.size(); ++i) std::swap(steps[i], steps[i + 1]);
  }
  int64_t limit = save_total_limit;
  if (best_step != kNoBestStep && limit == 1 && steps.back() != best_step) limit = 2;
  const int64_t n_delete = std::max<int64_t>(0, static_cast<int64_t>(steps.size()) - limit);
  std::vector<int64_t> out(steps.begin(), steps.begin() + n_delete);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace lockstep
