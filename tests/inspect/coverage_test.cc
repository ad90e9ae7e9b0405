// Sample coverage from a run's own step log (issue 21): a correct resume draws every sample
// once an epoch; a resume that restarts its epoch (the sampler not restored) is caught from
// its log alone, and `lockstep diff` shows each run's coverage when runs part on their data.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "formats/step_log.h"
#include "inspect/coverage.h"
#include "tests/test_util.h"

using nlohmann::json;

namespace lockstep {
namespace {

const std::string kRun = " --quiet --train_samples 64 --per_device_train_batch_size 8 --num_train_epochs 2";

void Train(const std::string& dir, const std::string& extra) {
  const auto o = test::RunCommand(std::string(LOCKSTEP_BIN) + " train --output_dir " + dir + kRun + extra);
  ASSERT_EQ(o.code, 0) << o.out;
}

CoverageReport Coverage(const std::string& dir) {
  StepLogContents log;
  EXPECT_OK(ReadStepLog(dir + "/steps.jsonl.zst", &log));
  return ComputeCoverage(log, dir);
}

TEST(Coverage, ACorrectResumeDrawsEverySampleOnceAnEpoch) {
  test::ScratchDir dir;
  Train(dir.Join("run"), " --stop-after-step 5");
  Train(dir.Join("run"), " --resume");
  const CoverageReport c = Coverage(dir.Join("run"));
  ASSERT_TRUE(c.known) << c.why;
  EXPECT_EQ(*c.dataset_size, 64);
  ASSERT_EQ(c.epochs.size(), 2u);
  for (const auto& e : c.epochs) {
    EXPECT_EQ(e.drawn, 64);
    EXPECT_EQ(e.repeated, 0);
    EXPECT_EQ(e.never, 0);
    EXPECT_TRUE(e.complete);
  }
  EXPECT_EQ(c.epochs[1].first_step, 9);  // 8 steps an epoch: step 8 ends epoch 0
  EXPECT_TRUE(c.problems.empty());
}

TEST(Coverage, AResumeThatRestartsItsEpochIsCaughtFromItsOwnLog) {
  test::ScratchDir dir;
  Train(dir.Join("run"), " --stop-after-step 5");
  Train(dir.Join("run"), " --resume --fault-inject sampler");
  const CoverageReport c = Coverage(dir.Join("run"));
  ASSERT_FALSE(c.epochs.empty());
  EXPECT_GT(c.epochs[0].repeated, 0);
  EXPECT_EQ(c.epochs[0].repeat_steps.front(), 6);  // the first resumed step
  ASSERT_EQ(c.problems.size(), 1u);
  auto o = test::RunCommand(std::string(LOCKSTEP_BIN) + " inspect " + dir.Join("run"));
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("sample ids drawn more than once, from step 6"), std::string::npos) << o.out;
  // Against the uninterrupted run: they part on the data at step 6, and both coverages show.
  Train(dir.Join("whole"), "");
  o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff --json " + dir.Join("whole") + " " + dir.Join("run"));
  EXPECT_EQ(o.code, 1) << o.out;
  const json report = json::parse(o.out);
  EXPECT_EQ(report["first_divergence"]["cause"], "data") << report["first_divergence"].dump();
  EXPECT_EQ(report["coverage"]["reference"]["epochs"][0]["repeated"], 0) << report["coverage"].dump();
  EXPECT_GT(report["coverage"]["candidate"]["epochs"][0]["repeated"].get<int64_t>(), 0) << report["coverage"].dump();
}

TEST(Coverage, ALogWithoutSampleIdsOrEpochsSaysSo) {
  StepLogContents log;
  log.records = {test::Typed({{"kind", "step"}, {"step", 1}, {"loss_bits", "0x3f800000"}})};
  CoverageReport c = ComputeCoverage(log, "x");
  EXPECT_FALSE(c.known);
  EXPECT_NE(c.why.find("no record holds sample ids"), std::string::npos) << c.why;
  log.records = {test::Typed({{"kind", "step"}, {"step", 1}, {"batches", {{1, 2}}}})};
  c = ComputeCoverage(log, "x");
  EXPECT_FALSE(c.known);
  EXPECT_NE(c.why.find("neither their epoch nor the plan"), std::string::npos) << c.why;
  // HF's epoch is counted after the step: 1.0 is the first epoch's last step, 1.25 the next's first.
  log.records = {test::Typed({{"step", 1}, {"epoch", 0.5}, {"batches", {{0, 1}}}}),
                 test::Typed({{"step", 2}, {"epoch", 1.0}, {"batches", {{2, 3}}}}),
                 test::Typed({{"step", 3}, {"epoch", 1.5}, {"batches", {{2, 1}}}}),
                 test::Typed({{"step", 4}, {"epoch", 2.0}, {"batches", {{0, 3}}}})};
  log.header = {{"dataset", {{"train_samples", 4}}}};
  c = ComputeCoverage(log, "x");
  ASSERT_EQ(c.epochs.size(), 2u);
  EXPECT_EQ(c.epochs[0].last_step, 2);
  EXPECT_EQ(c.epochs[1].first_step, 3);
  EXPECT_EQ(c.epochs[1].repeated, 0);
  EXPECT_EQ(c.epochs[1].never, 0);
}

}  // namespace
}  // namespace lockstep
