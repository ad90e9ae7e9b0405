// libFuzzer: the pickle evaluated as data (formats/pickle_data.h), then walked to JSON as a
// torch archive's reader walks it: never executed, never a crash, a leak or a hang.
#include "formats/pickle_data.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lockstep::PickleData pickle;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  if (!lockstep::EvaluatePickle(bytes, "fuzz.pkl", &pickle).ok()) return 0;
  nlohmann::json out;
  (void)pickle.ToJson(pickle.root(), "fuzz.pkl", nullptr, &out);
  return 0;
}
