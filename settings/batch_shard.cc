#include "settings/batch_shard.h"

#include <algorithm>

namespace lockstep {
namespace {

// torch's BatchSampler over positions 0..n-1.
std::vector<std::vector<int64_t>> Batches(int64_t n, int64_t batch_size, bool drop_last) {
  std::vector<std::vector<int64_t>> batches;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    if (drop_last && end - start < batch_size) break;
    batches.emplace_back();
    for (int64_t i = start; i < end; ++i) batches.back().push_back(i);
  }
  return batches;
}

}  // namespace

// accelerate's BatchSamplerShard._iter_with_no_split, step for step.
std::vector<std::vector<int64_t>> ShardEpoch(int64_t num_examples, int64_t batch_size, int64_t world_size, int64_t rank,
                                             bool drop_last) {
  const std::vector<std::vector<int64_t>> batches = Batches(num_examples, batch_size, drop_last);
  if (world_size == 1) return batches;
  const auto full = [&](const std::vector<int64_t>& b) { return static_cast<int64_t>(b.size()) == batch_size; };
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> initial_data, to_yield, batch;
  int64_t idx = 0;
  for (idx = 0; idx < static_cast<int64_t>(batches.size()); ++idx) {
    batch = batches[static_cast<size_t>(idx)];
    if (!drop_last && idx < world_size) initial_data.insert(initial_data.end(), batch.begin(), batch.end());
    if (idx % world_size == rank) to_yield = batch;
    if (idx % world_size == world_size - 1 && full(batch)) {
      out.push_back(to_yield);
      to_yield.clear();
    }
  }
  if (drop_last || initial_data.empty()) return out;
  --idx;  // Python's loop variable keeps the last index
  if (full(to_yield)) out.push_back(to_yield);
  while (static_cast<int64_t>(initial_data.size()) < world_size * batch_size) {  // fewer samples than one round
    const std::vector<int64_t> copy = initial_data;
    initial_data.insert(initial_data.end(), copy.begin(), copy.end());
  }
  if (full(batch)) {  // the last batch was full and went out with its round
    batch.clear();
    ++idx;
  }
  size_t cycle = 0;
  while (idx % world_size != 0 || !batch.empty()) {
    const size_t end = std::min(initial_data.size(), cycle + static_cast<size_t>(batch_size) - batch.size());
    batch.insert(batch.end(), initial_data.begin() + static_cast<std::ptrdiff_t>(cycle),
                 initial_data.begin() + static_cast<std::ptrdiff_t>(end));
    if (idx % world_size == rank) out.push_back(batch);
    cycle = end;
    batch.clear();
    ++idx;
  }
  return out;
}

}  // namespace lockstep
