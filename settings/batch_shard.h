// Data-parallel sharding of an epoch, exactly as the Hugging Face Trainer gets it from
// accelerate's BatchSamplerShard with its defaults (split_batches=False, even_batches=True):
//
//   the shared permutation is cut into batches of per_device_train_batch_size (the last
//   one short unless drop_last); global batch i goes to rank i mod P, handed out in full
//   rounds of P. Without drop_last the last round is completed, and a short batch filled,
//   with positions cycled from the start of the epoch, so every rank gets the same number
//   of full batches. With drop_last the incomplete last round is dropped.
//
// Positions index the epoch's permutation, so one table serves every epoch. A single
// process is not sharded (accelerate does not wrap its sampler): its last batch stays
// short. Spec: formats/doc/step_log_format.md, "Data-parallel sharding". No LibTorch here.
#pragma once

#include <cstdint>
#include <vector>

namespace lockstep {

// The micro-batches of `rank` in one epoch of `num_examples`, as positions in the epoch's
// permutation. Requires batch_size >= 1, world_size >= 1, 0 <= rank < world_size.
std::vector<std::vector<int64_t>> ShardEpoch(int64_t num_examples, int64_t batch_size, int64_t world_size, int64_t rank,
                                             bool drop_last);

}  // namespace lockstep
