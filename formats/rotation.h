// save_total_limit rotation, exactly as the Hugging Face Trainer does it
// (Trainer._sorted_checkpoints + _rotate_checkpoints), as a pure function so the trainer
// applies it and the inspector audits it with the same rule.
#pragma once

#include <cstdint>
#include <vector>

namespace lockstep {

constexpr int64_t kNoBestStep = -1;

// Given the steps of the committed checkpoints, the best checkpoint's step (kNoBestStep when
// no metric is tracked) and save_total_limit (<= 0: keep all), returns the steps to delete,
// oldest first. The best checkpoint is moved to second-to-last so it is never deleted; with a
// limit of 1 and a best that is not the newest, two checkpoints are kept.
std::vector<int64_t> CheckpointsToDelete(std::vector<int64_t> steps, int64_t best_step, int64_t save_total_limit);

}  // namespace lockstep
