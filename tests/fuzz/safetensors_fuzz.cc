// libFuzzer: the safetensors reader (header validation, then every tensor streamed).
#include "formats/safetensors.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  const std::string path = fuzz::WriteInput(data, size, "model.safetensors");
  SafetensorsFile file;
  if (!ReadSafetensorsHeader(path, &file).ok()) return 0;
  for (const auto& tensor : file.tensors) {
    (void)StreamSafetensorsTensor(file, tensor, [](const uint8_t*, size_t) {});
  }
  return 0;
}
