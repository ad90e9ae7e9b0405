// A resume never silently continues something other than the run it claims to (issue 10):
// a damaged step log is found before it is continued (finding 3), a renamed checkpoint is
// not the step its name says (finding 7), and --overwrite_output_dir never deletes another
// trainer's run (finding 5).
#include <filesystem>

#include <gtest/gtest.h>

#include "formats/checkpoint.h"
#include "formats/step_log.h"
#include "tests/run_helpers.h"
#include "tests/test_util.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

TrainOptions StopAt(int64_t step) {
  TrainOptions o = test::Quiet();
  o.stop_after_step = step;
  return o;
}

TrainOptions ResumeFrom(const std::string& checkpoint, bool override_changes = false) {
  TrainOptions o = test::Quiet();
  o.resume_from = checkpoint;
  o.resume_override = override_changes;
  return o;
}

Status TryTrain(const TrainingArgs& a, const TrainOptions& o) {
  TrainResult r;
  return RunTraining(a, o, &r);
}

// A run stopped after step 10 (checkpoints 6 and 10) with one byte of the log's first
// step frame flipped: history the checkpoints saw, damaged after they were saved.
std::string DamagedRun(const test::ScratchDir& dir) {
  test::Train(test::Tiny("mlp", dir.path()), StopAt(10));
  const std::string log = dir.Join(kStepLogFile);
  StepLogContents c = test::Log(dir.path());
  test::FlipByte(log, static_cast<int64_t>(c.frame_ends[0]) + 40);
  return log;
}

TEST(StepLogDamage, ResumeRefusesALogDamagedBeforeTheCheckpointAndChangesNothing) {
  test::ScratchDir dir;
  const std::string log = DamagedRun(dir);
  const std::string before = test::ReadAll(log);
  const Status st = TryTrain(test::Tiny("mlp", dir.path()), ResumeFrom(""));
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("refusing to resume"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("differ from the checkpoint's digest"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("found: " + log + ": frame at byte"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("--resume-override"), std::string::npos) << st.message();
  EXPECT_EQ(test::ReadAll(log), before);  // refused before a byte was cut or added
}

TEST(StepLogDamage, OverrideCutsBeforeTheDamageRecordsItAndMarksTheRun) {
  test::ScratchDir dir;
  DamagedRun(dir);
  TrainResult r = test::Train(test::Tiny("mlp", dir.path()), ResumeFrom("", /*override=*/true));
  EXPECT_EQ(r.global_step, 16);
  StepLogContents c;
  ASSERT_OK(ReadStepLog(dir.Join(kStepLogFile), &c));  // the finished log reads again
  ASSERT_EQ(c.events.size(), 1u);
  const nlohmann::json& resume = c.events[0].record;
  ASSERT_TRUE(resume.contains("step_log_damage")) << resume.dump();
  EXPECT_EQ(resume["step_log_damage"]["last_step_kept"], 0);  // the damaged frame held steps 1..
  EXPECT_EQ(resume["resume_override"], true);
  ASSERT_FALSE(c.records.empty());
  EXPECT_EQ(StepRecordJson(c.records.front())["step"], 11);  // what was kept, then the resumed steps
  for (const auto& rec : test::Stored(c.records)) EXPECT_EQ(rec.value("resume_override", false), true) << rec["step"];
}

TEST(StepLogDamage, ALogCutShortOfTheCheckpointIsRefused) {
  test::ScratchDir dir;
  test::Train(test::Tiny("mlp", dir.path()), StopAt(10));
  const std::string log = dir.Join(kStepLogFile);
  test::ShrinkFile(log, test::FileSize(log) - test::Log(dir.path()).frame_ends[1]);  // header + one frame
  const Status st = TryTrain(test::Tiny("mlp", dir.path()), ResumeFrom(""));
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("refusing to resume"), std::string::npos) << st.message();
}

TEST(RenamedCheckpoint, IsSkippedByAutoResumeAndRefusedByName) {
  test::ScratchDir dir;
  test::Train(test::Tiny("mlp", dir.path()), StopAt(10));  // checkpoints 6 and 10
  fs::rename(dir.Join("checkpoint-10"), dir.Join("checkpoint-12"));
  const Status named = TryTrain(test::Tiny("mlp", dir.path()), ResumeFrom(dir.Join("checkpoint-12")));
  ASSERT_TRUE(named.IsCorruption()) << named.ToString();
  EXPECT_NE(named.message().find("records step 10 but the directory is named checkpoint-12"), std::string::npos)
      << named.message();
  TrainResult r = test::Train(test::Tiny("mlp", dir.path()), ResumeFrom(""));
  EXPECT_EQ(r.resumed_from, dir.Join("checkpoint-6"));
  ASSERT_EQ(r.skipped_checkpoints.size(), 1u);
  EXPECT_NE(r.skipped_checkpoints[0].find("named checkpoint-12"), std::string::npos) << r.skipped_checkpoints[0];
}

// HF's --overwrite_output_dir never deletes anything; users pass it by habit.
TEST(OverwriteOutputDir, RefusesAndKeepsEverythingWhenAnotherTrainersRunIsThere) {
  test::ScratchDir dir;
  fs::create_directories(dir.Join("checkpoint-500"));
  test::WriteAll(dir.Join("checkpoint-500/model.safetensors"), "hf weights");
  test::WriteAll(dir.Join("trainer_state.json"), "{}");
  TrainingArgs a = test::Tiny("mlp", dir.path());
  a.overwrite_output_dir = true;
  const Status st = TryTrain(a, test::Quiet());
  ASSERT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_NE(st.message().find("checkpoint-500 is not a Lockstep checkpoint"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("nothing was removed"), std::string::npos) << st.message();
  EXPECT_EQ(test::ReadAll(dir.Join("checkpoint-500/model.safetensors")), "hf weights");
  EXPECT_TRUE(fs::exists(dir.Join("trainer_state.json")));
}

TEST(OverwriteOutputDir, RefusesResultsFilesWithoutALockstepStepLog) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("all_results.json"), "{\"train_loss\": 1.0}");
  TrainingArgs a = test::Tiny("mlp", dir.path());
  a.overwrite_output_dir = true;
  const Status st = TryTrain(a, test::Quiet());
  ASSERT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_NE(st.message().find("no Lockstep step log"), std::string::npos) << st.message();
  EXPECT_TRUE(fs::exists(dir.Join("all_results.json")));
}

TEST(OverwriteOutputDir, ReplacesALockstepRun) {
  test::ScratchDir dir;
  TrainingArgs a = test::Tiny("mlp", dir.path());
  test::Train(a);
  a.overwrite_output_dir = true;
  a.save_steps = 8;
  TrainResult r = test::Train(a);
  EXPECT_EQ(r.checkpoints, std::vector<std::string>({dir.Join("checkpoint-8"), dir.Join("checkpoint-16")}));
}

}  // namespace
}  // namespace lockstep
