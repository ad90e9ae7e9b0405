// `lockstep diff`, `lockstep replay` and the step-log viewer as a user runs them: verdicts,
// exit codes 0 / 1 / 2, --json, and bad usage told in Lockstep's words.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace lockstep {
namespace {

using nlohmann::json;

test::CommandOutput Lockstep(const std::string& args) {
  return test::RunCommand(std::string(LOCKSTEP_BIN) + " " + args);
}

// Two small runs made once per test binary: `a` and `same` identical, `other` with another data_seed.
class CliDiff : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::ScratchDir();
    const std::string common =
        " --quiet --train_samples 20 --eval_samples 0 --num_train_epochs 1 --save_steps 2"
        " --per_device_train_batch_size 5 --num_threads 1 --data_seed 1";
    for (const char* name : {"a", "same"}) {
      ASSERT_EQ(Lockstep("train --output_dir " + dir_->Join(name) + common).code, 0);
    }
    ASSERT_EQ(Lockstep("train --output_dir " + dir_->Join("other") + common + " --data_seed 2").code, 0);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string Run(const char* name) { return dir_->Join(name); }
  static test::ScratchDir* dir_;
};
test::ScratchDir* CliDiff::dir_ = nullptr;

TEST_F(CliDiff, IdenticalRunsExitZeroAndDifferentOnesOneWithTheCause) {
  auto o = Lockstep("diff " + Run("a") + " " + Run("same"));
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(o.out.rfind("IDENTICAL", 0), 0u) << o.out;  // the verdict first
  o = Lockstep("diff " + Run("a") + " " + Run("other"));
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_EQ(o.out.rfind("DIFFERENT: the runs part at step 1, cause data", 0), 0u) << o.out;
  EXPECT_NE(o.out.find("training_args.data_seed"), std::string::npos) << o.out;
  o = Lockstep("diff " + Run("a") + " " + Run("other") + " --json");
  EXPECT_EQ(o.code, 1);
  const json j = json::parse(o.out);
  EXPECT_FALSE(j["identical"].get<bool>());
  EXPECT_EQ(j["first_divergence"]["cause"], "data");
  EXPECT_EQ(j["settings_differences"][0]["name"], "training_args.data_seed");
}

TEST_F(CliDiff, CheckpointsAndTensorFilesDiffTensorByTensor) {
  auto o = Lockstep("diff " + Run("a") + "/checkpoint-2 " + Run("same") + "/checkpoint-2");
  EXPECT_EQ(o.code, 0) << o.out;
  o = Lockstep("diff " + Run("a") + "/checkpoint-2/model.h5 " + Run("other") + "/checkpoint-2/model.h5 --json");
  EXPECT_EQ(o.code, 1) << o.out;
  const json j = json::parse(o.out);
  EXPECT_FALSE(j["within_tolerance"].get<bool>());
  EXPECT_EQ(j["tensors"][0]["status"], "differ");
  EXPECT_TRUE(j["tensors"][0].contains("max_ulp"));
}

TEST_F(CliDiff, BadUsageAndUnreadableInputExitTwoNamingThem) {
  auto o = Lockstep("diff " + Run("a") + " " + Run("a") + "/checkpoint-2");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("compare like with like"), std::string::npos) << o.out;
  o = Lockstep("diff " + Run("a") + " " + Run("absent"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find(Run("absent")), std::string::npos) << o.out;
  o = Lockstep("diff " + Run("a") + " " + Run("same") + " --atol abc");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--atol abc: expected a non-negative number"), std::string::npos) << o.out;
  o = Lockstep("diff " + Run("a") + " " + Run("same") + " --ulp -1 --json");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_EQ(json::parse(o.out.substr(o.out.find('{')))["exit_code"], 2) << o.out;
  o = Lockstep("diff " + Run("a"));
  EXPECT_EQ(o.code, 2) << o.out;
}

TEST_F(CliDiff, ReplayChecksTheLogAndRefusesBadRanges) {
  auto o = Lockstep("replay " + Run("a") + " --from checkpoint-2 --steps 2");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("REPLAYED: steps 3..4 match the log bit for bit"), std::string::npos) << o.out;
  o = Lockstep("replay " + Run("a") + " --from checkpoint-2 --steps 1 --json");
  EXPECT_EQ(o.code, 0) << o.out;
  const json j = json::parse(o.out);
  EXPECT_EQ(j["steps_replayed"], 1);
  EXPECT_TRUE(j["first_mismatch"].is_null());
  // Without --steps, every logged step after the checkpoint: 3 and 4 of the run's 4.
  o = Lockstep("replay " + Run("a") + " --from checkpoint-2 --json");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(json::parse(o.out)["steps_replayed"], 2) << o.out;
  o = Lockstep("replay " + Run("a") + " --from checkpoint-4");  // the last: nothing to check, no verdict
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("nothing to replay"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("REPLAYED"), std::string::npos) << o.out;
  for (const std::string bad :
       {" --from checkpoint-2 --steps 0", " --from checkpoint-99", " --from checkpoint-2 --steps 99",
        " --from checkpoint-2 --steps 2 --trace-modules t.json", " --from checkpoint-2 --device tpu"}) {
    o = Lockstep("replay " + Run("a") + bad);
    EXPECT_EQ(o.code, 2) << bad << ": " << o.out;
    EXPECT_NE(o.out.find("lockstep replay: "), std::string::npos) << o.out;
  }
}

TEST_F(CliDiff, InspectReadsAStepLog) {
  auto o = Lockstep("inspect " + Run("a") + "/steps.jsonl.zst --steps 2:3 --fields loss_bits,lr");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("loss_bits"), std::string::npos) << o.out;
  o = Lockstep("inspect " + Run("a") + "/steps.jsonl.zst --json");
  EXPECT_EQ(json::parse(o.out)["records"], 4);
  o = Lockstep("inspect " + Run("a") + "/steps.jsonl.zst --steps 3:1");
  EXPECT_EQ(o.code, 2) << o.out;
  test::ScratchDir dir;
  test::WriteAll(dir.Join("steps.jsonl.zst"), "not zstd at all");
  o = Lockstep("inspect " + dir.Join("steps.jsonl.zst"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find(dir.Join("steps.jsonl.zst")), std::string::npos) << o.out;
}

}  // namespace
}  // namespace lockstep
