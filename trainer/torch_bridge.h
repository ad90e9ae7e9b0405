// The one place where torch::Tensor meets the format layer, and where device-specific
// LibTorch calls (generators, determinism switches) live, guarded by TORCH_VERSION_MAJOR.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "formats/status.h"
#include "formats/tensor_file.h"

namespace lockstep {

// Copies `t` (any device, any layout) into plain little-endian bytes named `name`.
// Fails for dtypes the tensor format does not carry (complex, quantized).
Status ToTensorData(const std::string& name, const torch::Tensor& t, TensorData* out);

// A CPU tensor holding a copy of `data`.
torch::Tensor FromTensorData(const TensorData& data);

// The dtype `t` would be stored as, or false when unsupported.
bool DTypeOf(const torch::Tensor& t, DType* out);

// Picks the device for "auto" | "cpu" | "cuda"; fails when cuda is asked for but absent.
Status ResolveDevice(const std::string& wanted, torch::Device* device);

// Makes kernels deterministic on `device` (cuBLAS workspace, deterministic algorithms,
// no cuDNN benchmark, no TF32). Call before the first kernel runs.
void EnableDeterminism(const torch::Device& device);

// The raw state bytes of a generator, and back. CPU: 5056 bytes (mt19937 and the normal
// sampling cache); CUDA (LibTorch 2.x): 16 bytes, seed then Philox offset.
std::vector<uint8_t> GeneratorStateBytes(at::Generator gen);
void SetGeneratorStateBytes(at::Generator gen, const std::vector<uint8_t>& state);

// The default (global) generator of a device type.
at::Generator DefaultGenerator(torch::DeviceType type);

}  // namespace lockstep
