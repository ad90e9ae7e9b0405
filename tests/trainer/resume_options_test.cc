// The trainer's resume options: stopping as a preempted run, the "resume" record, and the
// override that resumes a changed run but marks it.
#include <filesystem>

#include <gtest/gtest.h>

#include "formats/step_log.h"
#include "tests/run_helpers.h"
#include "tests/test_util.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;

namespace lockstep {
using namespace test;  // NOLINT: Tiny, Quiet, Train, Log

namespace {

TrainOptions StopAt(int64_t step) {
  TrainOptions o = Quiet();
  o.stop_after_step = step;
  return o;
}

TrainOptions ResumeLatest() {
  TrainOptions o = Quiet();
  o.resume_from = "";
  return o;
}

}  // namespace

TEST(StopAfterStep, CheckpointsTheStepAndWritesNoResults) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());  // 16 steps, saves at 6 and 12
  TrainResult r = Train(a, StopAt(5));
  EXPECT_TRUE(r.stopped_early);
  EXPECT_EQ(r.global_step, 5);
  EXPECT_EQ(r.saved_steps, std::vector<int64_t>({5}));
  EXPECT_TRUE(fs::exists(dir.Join("checkpoint-5/manifest.json")));
  EXPECT_FALSE(fs::exists(dir.Join("train_results.json")));  // as a preempted run
  EXPECT_EQ(Log(dir.path()).records.size(), 5u);
}

// Issue 21, finding 8: `train --resume` of a finished run rewrote train_results.json with
// train_runtime 0 and 794,832,470 samples/s. It trains nothing and leaves the results alone;
// a run killed after its last save but before its results writes them, without speeds.
TEST(ResumeFinished, LeavesTheResultsOfAFinishedRunAlone) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  Train(a, Quiet());
  const std::string before = ReadAll(dir.Join("train_results.json"));
  const size_t records = Log(dir.path()).records.size();
  TrainResult r = Train(a, ResumeLatest());
  EXPECT_EQ(r.global_step, 16);
  EXPECT_EQ(ReadAll(dir.Join("train_results.json")), before);
  EXPECT_EQ(Log(dir.path()).records.size(), records);

  fs::remove(dir.Join("train_results.json"));  // killed between the last save and the results
  Train(a, ResumeLatest());
  const auto results = nlohmann::json::parse(ReadAll(dir.Join("train_results.json")));
  EXPECT_FALSE(results.contains("train_samples_per_second")) << results.dump();
  EXPECT_EQ(results["train_loss"], nlohmann::json::parse(before)["train_loss"]);
}

TEST(StopAfterStep, AtASaveStepSavesOnce) {
  test::ScratchDir dir;
  TrainResult r = Train(Tiny("mlp", dir.path()), StopAt(6));
  EXPECT_EQ(r.saved_steps, std::vector<int64_t>({6}));
}

TEST(StopAfterStep, AtOrPastTheEndIsAnOrdinaryRun) {
  test::ScratchDir dir;
  TrainResult r = Train(Tiny("mlp", dir.path()), StopAt(16));
  EXPECT_FALSE(r.stopped_early);
  EXPECT_TRUE(fs::exists(dir.Join("train_results.json")));
}

TEST(ResumeRecord, NamesTheCheckpointAndTheSafeChanges) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  Train(a, StopAt(5));
  a.logging_steps = 4;  // safe to change: allowed, and recorded
  TrainResult r = Train(a, ResumeLatest());
  EXPECT_EQ(r.global_step, 16);
  StepLogContents log = Log(dir.path());
  ASSERT_EQ(log.records.size(), 16u);
  ASSERT_EQ(log.events.size(), 1u);
  const auto& e = log.events[0];
  EXPECT_EQ(e.steps_before, 5u);
  EXPECT_EQ(e.record["kind"], "resume");
  EXPECT_EQ(e.record["after_step"], 5);
  EXPECT_EQ(e.record["checkpoint"], "checkpoint-5");
  EXPECT_EQ(e.record["resume_override"], false);
  ASSERT_EQ(e.record["changed_settings"].size(), 1u);
  EXPECT_EQ(e.record["changed_settings"][0]["setting"], "logging_steps");
  EXPECT_EQ(e.record["changed_settings"][0]["safe"], true);
  for (const auto& rec : test::Stored(log.records)) EXPECT_FALSE(rec.contains("resume_override"));
}

TEST(ResumeRecord, ASecondResumeFromTheSameCheckpointReplacesTheFirst) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  Train(a, StopAt(5));
  TrainOptions o = ResumeLatest();
  o.stop_after_step = 9;
  Train(a, o);
  o.resume_from = dir.Join("checkpoint-5");  // back to 5: records 6..9 and their resume go
  o.stop_after_step.reset();
  Train(a, o);
  StepLogContents log = Log(dir.path());
  EXPECT_EQ(log.records.size(), 16u);
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].record["after_step"], 5);
}

TEST(ResumeOverride, ResumesAChangedRunAndMarksEveryLaterRecord) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  Train(a, StopAt(5));
  a.learning_rate = 2e-3;
  TrainResult r;
  Status st = RunTraining(a, ResumeLatest(), &r);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("--resume-override"), std::string::npos) << st.message();

  TrainOptions o = ResumeLatest();
  o.resume_override = true;
  r = Train(a, o);
  EXPECT_EQ(r.global_step, 16);
  StepLogContents log = Log(dir.path());
  for (const auto& rec : test::Stored(log.records)) {
    EXPECT_EQ(rec.contains("resume_override"), rec["step"].get<int64_t>() > 5) << rec["step"];
  }
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].record["resume_override"], true);
  EXPECT_EQ(log.events[0].record["changed_settings"][0]["setting"], "learning_rate");
  EXPECT_EQ(log.events[0].record["changed_settings"][0]["safe"], false);
}

TEST(ResumeFaults, NamesRoundTripAndUnknownOnesAreRefused) {
  for (const auto& name : ResumeFaultNames()) {
    ResumeFault f;
    ASSERT_TRUE(ParseResumeFault(name, &f)) << name;
    EXPECT_EQ(ResumeFaultName(f), name);
  }
  ResumeFault f;
  EXPECT_FALSE(ParseResumeFault("everything", &f));
}

}  // namespace lockstep
