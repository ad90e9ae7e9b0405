// verify-resume --cmd resumes from the newest checkpoint whose save finished: what each
// writer commits last decides it (replay/verify_cmd.h). A command that fails is reported
// with its last words, not only its log's name.
#include "replay/verify_cmd.h"

#include <set>

#include <gtest/gtest.h>

#include "formats/checkpoint_layout.h"
#include "formats/file_util.h"
#include "process/child_process.h"
#include "tests/inspect_helpers.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

TEST(UnfinishedSave, AnHfSaveIsFinishedOnceItsTrainerStateIsWholeBesideItsWeightsAndNoJitMarkerRemains) {
  test::ScratchDir dir;
  const std::string ckpt = dir.Join("checkpoint-16");
  ASSERT_TRUE(CopyTree(test::HfRun() + "/checkpoint-16", ckpt).ok());
  EXPECT_EQ(UnfinishedSave(ckpt), "");

  // The Trainer's resume refuses a checkpoint without weights, whole trainer_state.json or not;
  // under DeepSpeed ZeRO-3 its shards hold them.
  const std::string weights = test::ReadAll(ckpt + "/" + hf::kSafetensorsFile);
  ASSERT_TRUE(RemoveTree(ckpt + "/" + hf::kSafetensorsFile).ok());
  EXPECT_NE(UnfinishedSave(ckpt).find("no model weights"), std::string::npos) << UnfinishedSave(ckpt);
  ASSERT_TRUE(MakeDirs(ckpt + "/global_step16").ok());
  EXPECT_EQ(UnfinishedSave(ckpt), "");
  ASSERT_TRUE(RemoveTree(ckpt + "/global_step16").ok());
  test::WriteAll(ckpt + "/" + hf::kSafetensorsFile, weights);
  EXPECT_EQ(UnfinishedSave(ckpt), "");

  test::WriteAll(ckpt + "/" + hf::kIncompleteMarkerFile, "Checkpoint started at step 16 and in progress...");
  EXPECT_NE(UnfinishedSave(ckpt).find(hf::kIncompleteMarkerFile), std::string::npos) << UnfinishedSave(ckpt);
  ASSERT_TRUE(RemoveTree(ckpt + "/" + hf::kIncompleteMarkerFile).ok());

  const std::string state = test::ReadAll(ckpt + "/trainer_state.json");
  test::WriteAll(ckpt + "/trainer_state.json", state.substr(0, state.size() / 2));  // killed while writing it
  EXPECT_NE(UnfinishedSave(ckpt).find("trainer_state.json"), std::string::npos) << UnfinishedSave(ckpt);

  ASSERT_TRUE(RemoveTree(ckpt + "/trainer_state.json").ok());  // killed before writing it
  EXPECT_NE(UnfinishedSave(ckpt).find("its save never finished"), std::string::npos) << UnfinishedSave(ckpt);

  const std::string empty = dir.Join("checkpoint-17");
  ASSERT_TRUE(MakeDirs(empty).ok());
  EXPECT_NE(UnfinishedSave(empty).find("empty"), std::string::npos);

  // Issue 33, finding 5: PEFT writes the adapter's README.md first; a checkpoint holding
  // only that is taken as whole by no rule but the reference's: what every checkpoint of
  // the finished reference holds, it lacks.
  const std::string peft = dir.Join("checkpoint-20");
  ASSERT_TRUE(MakeDirs(peft).ok());
  test::WriteAll(peft + "/README.md", "# model card");
  const std::set<std::string> whole = {"README.md", "adapter_config.json", "adapter_model.safetensors"};
  EXPECT_NE(
      UnfinishedSave(peft, &whole).find("no adapter_config.json, which every checkpoint of the reference run holds"),
      std::string::npos)
      << UnfinishedSave(peft, &whole);

  const std::string own = dir.Join("checkpoint-18");  // a script's own format: taken as it is
  ASSERT_TRUE(MakeDirs(own).ok());
  test::WriteAll(own + "/state.pt", "x");
  EXPECT_EQ(UnfinishedSave(own), "");

  // SIGTERM while safetensors wrote the Trainer's first file (found by CI: the resume then
  // failed, "Can't find a valid checkpoint"): only its hidden temporary file is there.
  const std::string cut = dir.Join("checkpoint-19");
  ASSERT_TRUE(MakeDirs(cut).ok());
  test::WriteAll(cut + "/.tmpcPhakL", "");
  EXPECT_NE(UnfinishedSave(cut).find(".tmpcPhakL"), std::string::npos) << UnfinishedSave(cut);
  test::WriteAll(cut + "/state.pt", "x");
  EXPECT_EQ(UnfinishedSave(cut), "");
}

TEST(LogTail, TheLastLinesIndentedAndNothingForAnEmptyOrMissingLog) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("log"), "one\ntwo\nthree\nValueError: bad checkpoint\n");
  EXPECT_EQ(LogTail(dir.Join("log"), 2), "\n    three\n    ValueError: bad checkpoint");
  EXPECT_EQ(LogTail(dir.Join("log"), 9), "\n    one\n    two\n    three\n    ValueError: bad checkpoint");
  test::WriteAll(dir.Join("long"), std::string(5000, 'x') + "\nlast");
  EXPECT_EQ(LogTail(dir.Join("long"), 1), "\n    last");
  EXPECT_LE(LogTail(dir.Join("long"), 9).size(), 2048u + 2 * 5);  // at most 2 KiB of the log
  test::WriteAll(dir.Join("empty"), "");
  EXPECT_EQ(LogTail(dir.Join("empty")), "");
  EXPECT_EQ(LogTail(dir.Join("missing")), "");
}

}  // namespace
}  // namespace lockstep
