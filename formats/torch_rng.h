// Decoding PyTorch generator states from their bytes (torch.get_rng_state(),
// torch.cuda.get_rng_state()), as Lockstep's rng_state.json and HF's rng_state.pth hold them.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace lockstep {

// Describes a generator state: its kind, size and XXH3-128 digest, plus
//  - CPU (5056 bytes, mt19937): the initial seed and the mt19937 position: the index of the
//    next word of the 624-word state and the words left before the state is regenerated;
//  - CUDA (16 bytes, Philox): the seed and the offset.
// Other sizes are described as "unknown" with their digest.
nlohmann::json DescribeGeneratorState(const std::string& bytes);

}  // namespace lockstep
