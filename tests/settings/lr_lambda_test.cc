// Every scheduler against HF: the fixture's real transformers 5.17 values, and the
// formulas of transformers/optimization.py for the others.
#include "settings/lr_lambda.h"

#include <cmath>

#include <gtest/gtest.h>

#include "formats/json_file.h"
#include "settings/lr_scheduler.h"

namespace lockstep {
namespace {

LrLambda Make(const std::string& type, nlohmann::json kwargs, double lr, int64_t warmup, int64_t total) {
  LrLambda s;
  Status st = LrLambda::Create({type, std::move(kwargs), lr, warmup, total}, &s);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return s;
}

}  // namespace

TEST(LrLambda, MatchesTransformersFixtureExactly) {
  nlohmann::json fixture;
  Status st = ReadJsonFile(std::string(LOCKSTEP_FIXTURES_DIR) + "/hf/hf_lr_schedules.json", &fixture);
  ASSERT_TRUE(st.ok()) << st.ToString();
  int checked = 0;
  for (const auto& [name, case_] : fixture["schedules"].items()) {
    LrLambda s =
        Make(name, nlohmann::json::object(), case_["base_lr"], case_["num_warmup_steps"], case_["num_training_steps"]);
    const auto& lrs = case_["lr_per_step"];
    for (size_t i = 0; i < lrs.size(); ++i) {
      // lr_per_step[i] is the lr used by update i + 1, i.e. after i scheduler steps.
      EXPECT_EQ(s.LrAt(static_cast<int64_t>(i)), lrs[i].get<double>()) << name << " update " << i + 1;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 120);
}

TEST(LrLambda, WarmupMakesTheFirstUpdateUseZero) {
  for (const char* type :
       {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant_with_warmup", "inverse_sqrt"}) {
    LrLambda s = Make(type, nlohmann::json::object(), 1e-3, 4, 20);
    EXPECT_EQ(s.LrAt(0), 0.0) << type;
    EXPECT_DOUBLE_EQ(s.LrAt(2), 0.5e-3) << type;
  }
  EXPECT_EQ(Make("constant", nlohmann::json::object(), 1e-3, 4, 20).LrAt(0), 1e-3);  // no warmup at all
}

TEST(LrLambda, CosineWithRestartsRestartsEachCycle) {
  LrLambda s = Make("cosine_with_restarts", {{"num_cycles", 2}}, 1.0, 0, 20);
  EXPECT_DOUBLE_EQ(s.LrAt(0), 1.0);
  EXPECT_NEAR(s.LrAt(5), 0.5, 1e-12);  // half way through cycle 1
  EXPECT_DOUBLE_EQ(s.LrAt(10), 1.0);   // hard restart
  EXPECT_NEAR(s.LrAt(15), 0.5, 1e-12);
  EXPECT_EQ(s.LrAt(20), 0.0);  // progress >= 1
}

TEST(LrLambda, PolynomialDecaysToLrEnd) {
  LrLambda s = Make("polynomial", {{"lr_end", 1e-4}, {"power", 2.0}}, 1e-3, 2, 12);
  EXPECT_DOUBLE_EQ(s.LrAt(2), 1e-3);
  // pct_remaining = 0.5 -> (1e-3 - 1e-4) * 0.25 + 1e-4
  EXPECT_DOUBLE_EQ(s.LrAt(7), 0.9e-3 * 0.25 + 1e-4);
  EXPECT_DOUBLE_EQ(s.LrAt(12), 1e-4);
  EXPECT_DOUBLE_EQ(s.LrAt(50), 1e-4);                                                          // past the end: lr_end
  EXPECT_DOUBLE_EQ(Make("polynomial", nlohmann::json::object(), 1e-3, 0, 10).LrAt(10), 1e-7);  // HF default lr_end
}

TEST(LrLambda, InverseSqrtUsesWarmupAsTimescale) {
  LrLambda s = Make("inverse_sqrt", nlohmann::json::object(), 1.0, 4, 100);
  EXPECT_DOUBLE_EQ(s.LrAt(4), 1.0);
  EXPECT_DOUBLE_EQ(s.LrAt(16), 0.5);                                                 // 1 / sqrt(16 / 4)
  LrLambda no_warmup = Make("inverse_sqrt", nlohmann::json::object(), 1.0, 0, 100);  // timescale 10000
  EXPECT_DOUBLE_EQ(no_warmup.LrAt(30000), 0.5);
}

TEST(LrLambda, CosineWithMinLrFloorsAtMinLr) {
  LrLambda by_lr = Make("cosine_with_min_lr", {{"min_lr", 1e-4}}, 1e-3, 0, 10);
  EXPECT_DOUBLE_EQ(by_lr.LrAt(0), 1e-3);
  EXPECT_DOUBLE_EQ(by_lr.LrAt(10), 1e-4);
  EXPECT_DOUBLE_EQ(by_lr.LrAt(5), 1e-3 * (0.5 * 0.9 + 0.1));
  LrLambda by_rate = Make("cosine_with_min_lr", {{"min_lr_rate", 0.1}}, 1e-3, 0, 10);
  EXPECT_DOUBLE_EQ(by_rate.LrAt(10), 1e-4);
}

TEST(LrLambda, WarmupRatioRoundsUp) {
  EXPECT_EQ(ResolveWarmupSteps(0.1, 16), 2);  // ceil(1.6)
  EXPECT_EQ(ResolveWarmupSteps(0.0, 16), 0);
  EXPECT_EQ(ResolveWarmupSteps(5, 16), 5);
}

TEST(LrLambda, BadOptionsAreRefusedClearly) {
  LrLambda s;
  Status st = LrLambda::Create({"cosine", {{"power", 2}}, 1e-3, 0, 10}, &s);
  EXPECT_NE(st.message().find("'power' is not an option of the cosine scheduler"), std::string::npos) << st.message();
  st = LrLambda::Create({"warmup_stable_decay", {}, 1e-3, 0, 10}, &s);
  EXPECT_TRUE(st.IsInvalidArgument());
  st = LrLambda::Create({"cosine_with_min_lr", nlohmann::json::object(), 1e-3, 0, 10}, &s);
  EXPECT_NE(st.message().find("exactly one of min_lr and min_lr_rate"), std::string::npos);
  st = LrLambda::Create({"polynomial", {{"lr_end", 1.0}}, 1e-3, 0, 10}, &s);
  EXPECT_NE(st.message().find("lr_end"), std::string::npos);
  st = LrLambda::Create({"cosine", {{"num_cycles", "two"}}, 1e-3, 0, 10}, &s);
  EXPECT_NE(st.message().find("num_cycles must be a number"), std::string::npos);
}

// scheduler.json: the step count is what a resume restores, and the lr follows it.
TEST(LrScheduler, SavesItsStepCountAndRestoresIt) {
  LrScheduler run(Make("linear", nlohmann::json::object(), 1e-3, 2, 10));
  EXPECT_DOUBLE_EQ(run.lr(), 0.0);  // warmup: the first update uses lr 0
  for (int i = 0; i < 4; ++i) run.Step();
  const nlohmann::json saved = run.ToJson();
  EXPECT_EQ(saved["last_epoch"], 4);
  EXPECT_DOUBLE_EQ(saved["last_lr"].get<double>(), run.lr());

  LrScheduler resumed(Make("linear", nlohmann::json::object(), 1e-3, 2, 10));
  ASSERT_TRUE(resumed.FromJson(saved, "ck/scheduler.json").ok());
  EXPECT_EQ(resumed.steps(), 4);
  EXPECT_DOUBLE_EQ(resumed.lr(), run.lr());
  resumed.Restart();
  EXPECT_EQ(resumed.steps(), 0);
}

TEST(LrScheduler, AMissingOrNegativeStepCountIsCorruptionNamingTheFile) {
  LrScheduler s(Make("linear", nlohmann::json::object(), 1e-3, 0, 10));
  for (const nlohmann::json& bad : {nlohmann::json::object(), nlohmann::json{{"last_epoch", -1}},
                                    nlohmann::json{{"last_epoch", "3"}}, nlohmann::json::array()}) {
    const Status st = s.FromJson(bad, "ck/scheduler.json");
    EXPECT_TRUE(st.IsCorruption()) << bad.dump();
    EXPECT_NE(st.message().find("ck/scheduler.json: last_epoch"), std::string::npos) << st.message();
  }
}

// Issue 33: reduce_lr_on_plateau follows torch's ReduceLROnPlateau step for step. The lrs
// below are what torch 2.11 gave for these metrics (each option set once), and the state
// saves and restores itself mid-way.
TEST(LrScheduler, ReduceLrOnPlateauIsTorchsStepForStep) {
  struct Case {
    nlohmann::json kwargs;
    std::vector<double> metrics, lrs;
  };
  const std::vector<Case> cases = {
      {{{"mode", "min"}, {"factor", 0.5}, {"patience", 1}, {"threshold", 0.01}, {"cooldown", 1}},
       {1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9},
       {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025}},
      {{{"mode", "max"},
        {"factor", 0.1},
        {"patience", 0},
        {"threshold", 0.05},
        {"threshold_mode", "abs"},
        {"min_lr", 0.002}},
       {0.1, 0.12, 0.2, 0.21, 0.3, 0.3, 0.29},
       {0.1, 0.010000000000000002, 0.010000000000000002, 0.002, 0.002, 0.002, 0.002}}};
  for (const auto& c : cases) {
    LrScheduler s(Make(kReduceLrOnPlateau, c.kwargs, 0.1, 0, 100));
    ASSERT_TRUE(s.follows_metric());
    for (size_t i = 0; i < c.metrics.size(); ++i) {
      s.Step();  // optimizer steps do not move it
      s.StepOnMetric(c.metrics[i]);
      EXPECT_EQ(s.lr(), c.lrs[i]) << c.kwargs.dump() << " after metric " << i;
      if (i == 3) {  // a resume mid-way continues where it was
        LrScheduler resumed(Make(kReduceLrOnPlateau, c.kwargs, 0.1, 0, 100));
        ASSERT_TRUE(resumed.FromJson(s.ToJson(), "ck/scheduler.json").ok());
        s = resumed;
      }
    }
  }
  LrLambda bad;
  EXPECT_NE(LrLambda::Create({kReduceLrOnPlateau, {{"factor", 1.5}}, 0.1, 0, 10}, &bad)
                .message()
                .find("Factor should be < 1.0"),
            std::string::npos);
  EXPECT_NE(LrLambda::Create({kReduceLrOnPlateau, {{"cooldown_steps", 1}}, 0.1, 0, 10}, &bad)
                .message()
                .find("'cooldown_steps' is not an option"),
            std::string::npos);
}

}  // namespace lockstep
