// libFuzzer: the zip directory reader of torch archives (EOCD, zip64, entry names), then
// every entry read back.
#include "formats/zip_archive.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  const std::string path = fuzz::WriteInput(data, size, "archive.pt");
  std::vector<ZipEntry> entries;
  if (!ListZip(path, &entries).ok()) return 0;
  for (const auto& entry : entries) {
    std::string bytes;
    (void)ReadZipEntry(path, entry, 1 << 20, &bytes);
  }
  return 0;
}
