// libFuzzer: the module trace reader (JSON, kind, version, every entry's fields), and the
// summary writer on whatever floats the bytes spell.
#include <cstring>
#include <vector>

#include "formats/module_trace.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  const std::string path = fuzz::WriteInput(data, size, "trace.json");
  nlohmann::json trace;
  (void)ReadModuleTrace(path, &trace);
  std::vector<float> values(size / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), data, values.size() * sizeof(float));
  (void)ModuleTraceEntry("forward", "m", 0, {static_cast<int64_t>(values.size())}, values.data(), values.size());
  return 0;
}
