// libFuzzer: the JSON files of a run, through the checkpoint manifest: a checkpoint
// directory whose manifest.json is the input (one small file beside it), validated with
// checksums; and the same bytes through the JSON parser and dumper every reader uses.
#include <nlohmann/json.hpp>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lockstep;
  static const std::string dir = [] {
    const std::string d = fuzz::ScratchDir() + "/checkpoint-12";
    (void)MakeDirs(d);
    (void)WriteFileDurably(d + "/loop_state.json", "{\"tr_loss\": 1.0}\n");
    return d;
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)WriteFileDurably(dir + "/" + kManifestFile, text);
  Manifest manifest;
  (void)ValidateCheckpoint(dir, VerifyMode::kChecksums, &manifest);
  nlohmann::json j;
  if (ParseJson(text, "fuzz.json", &j).ok()) {
    (void)DumpJson(j, 2);
    (void)IntField(j, "global_step", 0);
    (void)ArrayField(j, "files");
  }
  return 0;
}
