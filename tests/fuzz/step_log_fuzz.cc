// libFuzzer: the step log reader (zstd frames, JSON records parsed into typed step records,
// the header), whole, by its header alone and by one frame; every record read is written
// back to JSON, as diff and inspect do to name a field.
#include "formats/step_log.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  const std::string path = fuzz::WriteInput(data, size, kStepLogFile);
  StepLogContents contents;
  (void)ReadStepLog(path, &contents);
  for (const auto& record : contents.records) {
    for (const auto& key : StepFieldNames(record)) (void)StepFieldJson(record, key);
  }
  nlohmann::json header;
  (void)ReadStepLogHeader(path, &header);
  if (contents.frame_ends.size() > 1) {
    StepLogContents frame;
    (void)ReadStepLogFrame(path, contents.frame_ends[0], contents.frame_ends[1], &frame);
  }
  return 0;
}
