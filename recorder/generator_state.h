// LibTorch's generator states as raw bytes: what StepRecorder records and the reference
// trainer records, checkpoints and restores. Internal to the build (not installed); ATen's
// Generator header only, not <torch/torch.h>.
#pragma once

#include <ATen/core/Generator.h>
#include <c10/core/DeviceType.h>

#include <cstdint>
#include <vector>

namespace lockstep {

// The default (global) generator of a device type.
at::Generator DefaultGenerator(c10::DeviceType type);

// The raw state bytes of a generator, and back. CPU: 5056 bytes (mt19937 and the normal
// sampling cache); CUDA (LibTorch 2.x): 16 bytes, seed then Philox offset.
std::vector<uint8_t> GeneratorStateBytes(at::Generator gen);
void SetGeneratorStateBytes(at::Generator gen, const std::vector<uint8_t>& state);

}  // namespace lockstep
