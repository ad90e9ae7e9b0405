#include "recorder/generator_state.h"

#include <ATen/Context.h>
#include <ATen/Functions.h>
#include <ATen/core/Tensor.h>

#include <cstring>
#include <mutex>

namespace lockstep {

at::Generator DefaultGenerator(c10::DeviceType type) {
  if (type == c10::DeviceType::CPU) return at::detail::getDefaultCPUGenerator();
  // The generic accessor links against a CPU-only LibTorch too (no at::cuda symbols).
  return at::globalContext().defaultGenerator(c10::Device(type));
}

std::vector<uint8_t> GeneratorStateBytes(at::Generator gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  const at::Tensor state = gen.get_state().contiguous();
  const auto* p = state.data_ptr<uint8_t>();
  return std::vector<uint8_t>(p, p + state.numel());
}

void SetGeneratorStateBytes(at::Generator gen, const std::vector<uint8_t>& state) {
  at::Tensor t = at::empty({static_cast<int64_t>(state.size())}, at::TensorOptions().dtype(at::kByte));
  std::memcpy(t.data_ptr<uint8_t>(), state.data(), state.size());
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(t);
}

}  // namespace lockstep
