// Internal to checksum.cc: the AVX2 build of XXH3-128's streaming update. The state is
// the same XXH3_state_t every build of xxhash uses, so the two updates are
// interchangeable and give the same digest; only the speed differs.
#pragma once

#include <cstddef>

namespace lockstep {
namespace internal {

// XXH3_128bits_update on an XXH3_state_t. Call only where the CPU supports AVX2.
void Xxh3Avx2Update128(void* state, const void* data, size_t size);

}  // namespace internal
}  // namespace lockstep
