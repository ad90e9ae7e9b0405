#include "trainer/torch_bridge.h"

#include <cstdlib>

namespace lockstep {

bool DTypeOf(const torch::Tensor& t, DType* out) {
  switch (t.scalar_type()) {
    case torch::kFloat32:
      *out = DType::kFloat32;
      return true;
    case torch::kFloat64:
      *out = DType::kFloat64;
      return true;
    case torch::kFloat16:
      *out = DType::kFloat16;
      return true;
    case torch::kBFloat16:
      *out = DType::kBFloat16;
      return true;
    case torch::kInt64:
      *out = DType::kInt64;
      return true;
    case torch::kInt32:
      *out = DType::kInt32;
      return true;
    case torch::kInt16:
      *out = DType::kInt16;
      return true;
    case torch::kInt8:
      *out = DType::kInt8;
      return true;
    case torch::kUInt8:
      *out = DType::kUInt8;
      return true;
    case torch::kBool:
      *out = DType::kBool;
      return true;
    default:
      return false;
  }
}

torch::ScalarType ScalarTypeOf(DType d) {
  switch (d) {
    case DType::kFloat32:
      return torch::kFloat32;
    case DType::kFloat64:
      return torch::kFloat64;
    case DType::kFloat16:
      return torch::kFloat16;
    case DType::kBFloat16:
      return torch::kBFloat16;
    case DType::kInt64:
      return torch::kInt64;
    case DType::kInt32:
      return torch::kInt32;
    case DType::kInt16:
      return torch::kInt16;
    case DType::kInt8:
      return torch::kInt8;
    case DType::kUInt8:
      return torch::kUInt8;
    case DType::kBool:
      return torch::kBool;
  }
  return torch::kUInt8;
}

Status ToTensorView(const std::string& name, const torch::Tensor& t, torch::Tensor* keep, TensorView* out) {
  DType dtype;
  if (!DTypeOf(t, &dtype)) {
    return Status::InvalidArgument("tensor '" + name + "' has unsupported dtype " +
                                   std::string(c10::toString(t.scalar_type())));
  }
  *keep = t.detach().to(torch::kCPU).contiguous();  // no copy for a contiguous CPU tensor
  out->name = name;
  out->dtype = dtype;
  out->shape.assign(keep->sizes().begin(), keep->sizes().end());
  out->bytes = static_cast<size_t>(keep->numel()) * keep->element_size();
  out->data = out->bytes > 0 ? keep->data_ptr() : nullptr;
  return Status::Ok();
}

Status ResolveDevice(const std::string& wanted, int64_t local_rank, torch::Device* device) {
  const bool cuda = torch::cuda::is_available();
  if (wanted == "cuda" && !cuda) {
    return Status::InvalidArgument("--device cuda: no CUDA device is available to this LibTorch build");
  }
  // Each rank of a job on one machine drives its own GPU (LOCAL_RANK), as torchrun's do.
  const auto gpu = static_cast<c10::DeviceIndex>(cuda ? local_rank % torch::cuda::device_count() : 0);
  *device =
      (wanted == "cuda" || (wanted == "auto" && cuda)) ? torch::Device(torch::kCUDA, gpu) : torch::Device(torch::kCPU);
  return Status::Ok();
}

void EnableDeterminism(const torch::Device& device) {
  if (device.is_cuda()) {
    // cuBLAS reads this when its first handle is created; it must be set before any matmul.
    setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/1);
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/false);
  at::globalContext().setBenchmarkCuDNN(false);
  at::globalContext().setDeterministicCuDNN(true);
}

}  // namespace lockstep
