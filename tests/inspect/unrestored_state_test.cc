// The saved pieces a resume by fewer ranks left unread (issue 35): an 8-rank HF checkpoint,
// built as a real multi-rank save writes its per-rank files, resumed by 4 ranks names
// rng_state_4.pth .. rng_state_7.pth; by one process of the Trainer, every rank's file (it
// looks for rng_state.pth); accelerate's random_states_<r>.pkl the same way; a larger job, and
// a script's own checkpoint, nothing.
#include "inspect/unrestored_state.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/file_names.h"
#include "formats/step_record.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

void Touch(const std::string& path) { std::ofstream(path) << "x"; }

// run/checkpoint-8 as a job of `ranks` saved it, in `layout` ("hf", "accelerate", "own").
std::string SavedCheckpoint(const test::ScratchDir& dir, const std::string& layout, int64_t ranks) {
  const std::string ckpt = dir.Join("run/checkpoint-8");
  fs::create_directories(ckpt);
  if (layout == "hf") {
    std::ofstream(ckpt + "/" + kTrainerStateFile) << "{}";
    for (const char* f : {hf::kSafetensorsFile, hf::kTrainingArgsFile, hf::kOptimizerFile}) Touch(ckpt + "/" + f);
  } else if (layout == "accelerate") {
    for (const char* f : {hf::kSafetensorsFile, accelerate::kOptimizerFile}) Touch(ckpt + "/" + f);
  } else {
    Touch(ckpt + "/state.pt");
  }
  for (int64_t r = 0; r < ranks; ++r) {
    Touch(ckpt + "/" +
          (layout == "accelerate" ? accelerate::RandomStatesFile(r) : RngStateFileName(r, ranks, hf::kRngStateExt)));
  }
  return dir.Join("run");
}

StepLogContents ResumedBy(int64_t from, int64_t to) {
  StepLogContents log;
  log.header = {{"distributed", {{"world_size", from}}}};
  log.events.push_back({{{"kind", event_key::kResume},
                         {event_key::kAfterStep, 8},
                         {event_key::kWorldSize, {{event_key::kWorldSizeFrom, from}, {event_key::kWorldSizeTo, to}}}},
                        8});
  return log;
}

std::vector<std::string> Names(const std::string& pattern, int64_t first, int64_t end) {
  std::vector<std::string> out;
  for (int64_t r = first; r < end; ++r)
    out.push_back(pattern == "hf" ? RngStateFileName(r, 8, hf::kRngStateExt) : accelerate::RandomStatesFile(r));
  return out;
}

TEST(UnrestoredState, AnEightRankCheckpointResumedByFourNamesTheFourRanksItLacked) {
  for (const std::string layout : {"hf", "accelerate"}) {
    test::ScratchDir dir;
    const std::string run = SavedCheckpoint(dir, layout, 8);
    auto found = FindUnrestoredState(run, ResumedBy(8, 4));
    ASSERT_EQ(found.size(), 1u) << layout;
    EXPECT_EQ(found[0].checkpoint, "checkpoint-8");
    EXPECT_EQ(found[0].files, Names(layout, 4, 8)) << layout;
    EXPECT_FALSE(found[0].alike);
    const std::string text = UnrestoredStateText(found[0]);
    EXPECT_NE(text.find("checkpoint-8 was saved by 8 ranks and resumed by 4 after step 8: "), std::string::npos)
        << text;
    EXPECT_NE(text.find("saved and not restored"), std::string::npos) << text;
    // One process: the Trainer reads rng_state.pth, so rank 0's file is unread too; accelerate
    // reads random_states_0.pkl on process 0.
    found = FindUnrestoredState(run, ResumedBy(8, 1));
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].files, Names(layout, layout == "hf" ? 0 : 1, 8)) << layout;
    EXPECT_TRUE(FindUnrestoredState(run, ResumedBy(8, 16)).empty()) << layout;  // a larger job reads every file
  }
  test::ScratchDir dir;  // a script's own checkpoint: who reads which file is the script's
  EXPECT_TRUE(FindUnrestoredState(SavedCheckpoint(dir, "own", 8), ResumedBy(8, 4)).empty());
}

}  // namespace
}  // namespace lockstep
