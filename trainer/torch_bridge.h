// The one place where torch::Tensor meets the format layer, and where device-specific
// LibTorch calls (generators, determinism switches) live, guarded by TORCH_VERSION_MAJOR.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "formats/status.h"
#include "formats/tensor_file.h"
#include "recorder/generator_state.h"  // GeneratorStateBytes, DefaultGenerator

namespace lockstep {

// A view of `t`'s bytes (any device, any layout) for WriteTensorFile, with no copy when `t`
// is a contiguous CPU tensor; `*keep` holds the memory the view points into (a CPU copy
// otherwise). Fails for dtypes the tensor format does not carry (complex, quantized).
Status ToTensorView(const std::string& name, const torch::Tensor& t, torch::Tensor* keep, TensorView* out);

// The torch dtype of a stored dtype.
torch::ScalarType ScalarTypeOf(DType dtype);

// The dtype `t` would be stored as, or false when unsupported.
bool DTypeOf(const torch::Tensor& t, DType* out);

// Picks the device for "auto" | "cpu" | "cuda"; fails when cuda is asked for but absent.
Status ResolveDevice(const std::string& wanted, int64_t local_rank, torch::Device* device);

// Makes kernels deterministic on `device` (cuBLAS workspace, deterministic algorithms,
// no cuDNN benchmark, no TF32). Call before the first kernel runs.
void EnableDeterminism(const torch::Device& device);

}  // namespace lockstep
