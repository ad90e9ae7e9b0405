// libFuzzer: the step log reader (zstd frames, JSON records, the header), whole and by
// its header alone.
#include "formats/step_log.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  const std::string path = fuzz::WriteInput(data, size, kStepLogFile);
  StepLogContents contents;
  (void)ReadStepLog(path, &contents);
  nlohmann::json header;
  (void)ReadStepLogHeader(path, &header);
  if (contents.frame_ends.size() > 1) {
    std::vector<nlohmann::json> records;
    (void)ReadStepLogFrame(path, contents.frame_ends[0], contents.frame_ends[1], &records);
  }
  return 0;
}
