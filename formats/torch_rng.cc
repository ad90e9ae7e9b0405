#include "formats/torch_rng.h"

#include <cstring>

#include "formats/checksum.h"

namespace lockstep {

// CPU layout (CPUGeneratorImplState, ATen/CPUGeneratorImpl.cpp), little-endian:
//   uint64 the_initial_seed; int32 left; int32 seeded; uint64 next; uint64 state[624];
//   double normal_x, normal_y, normal_rho; int32 normal_is_valid; float next_float_normal;
//   bool next_float_normal_valid  -> 5056 bytes with padding.
nlohmann::json DescribeGeneratorState(const std::string& bytes) {
  nlohmann::json j = {{"bytes", bytes.size()}, {"xxh3_128", Xxh3Hex(bytes.data(), bytes.size())}};
  if (bytes.size() == 5056) {
    uint64_t seed, next;
    int32_t left, seeded;
    std::memcpy(&seed, bytes.data(), 8);
    std::memcpy(&left, bytes.data() + 8, 4);
    std::memcpy(&seeded, bytes.data() + 12, 4);
    std::memcpy(&next, bytes.data() + 16, 8);
    j["kind"] = "cpu mt19937";
    j["initial_seed"] = seed;
    j["mt19937_next"] = next;
    j["mt19937_left"] = left;
    j["seeded"] = seeded != 0;
  } else if (bytes.size() == 16) {
    uint64_t seed, offset;
    std::memcpy(&seed, bytes.data(), 8);
    std::memcpy(&offset, bytes.data() + 8, 8);
    j["kind"] = "cuda philox";
    j["seed"] = seed;
    j["offset"] = offset;
  } else {
    j["kind"] = "unknown";
  }
  return j;
}

}  // namespace lockstep
