// libFuzzer: the pickle scanner (an opcode walk that never executes anything).
#include "formats/pickle_scan.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lockstep::PickleSummary summary;
  (void)lockstep::ScanPickle(std::string(reinterpret_cast<const char*>(data), size), "fuzz.pkl", &summary);
  return 0;
}
