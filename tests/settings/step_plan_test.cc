#include "settings/step_plan.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {
StepPlan Plan(int64_t n, int64_t batch, int64_t accum, double epochs, int64_t max_steps = -1, bool drop_last = false) {
  TrainingArgs a;
  a.per_device_train_batch_size = batch;
  a.gradient_accumulation_steps = accum;
  a.num_train_epochs = epochs;
  a.max_steps = max_steps;
  a.dataloader_drop_last = drop_last;
  StepPlan p;
  Status st = ComputeStepPlan(a, n, &p);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return p;
}
}  // namespace

TEST(StepPlan, MatchesTheHfFixtureRun) {
  // transformers 5.17: 37 samples, batch 5, no accumulation, 2 epochs -> 16 updates.
  StepPlan p = Plan(37, 5, 1, 2);
  EXPECT_EQ(p.micro_batches_per_epoch, 8);
  EXPECT_EQ(p.updates_per_epoch, 8);
  EXPECT_EQ(p.max_steps, 16);
  EXPECT_EQ(p.MicroBatchSize(7), 2);  // the last micro-batch holds 37 - 35 samples
  EXPECT_DOUBLE_EQ(p.EpochAfterUpdate(0, 0), 0.125);
  EXPECT_DOUBLE_EQ(p.EpochAfterUpdate(0, 2), 0.375);
  EXPECT_DOUBLE_EQ(p.EpochAfterUpdate(1, 7), 2.0);
}

TEST(StepPlan, UnevenAccumulationStillUpdates) {
  StepPlan p = Plan(37, 5, 3, 2);  // 8 micro-batches -> windows 3, 3, 2
  EXPECT_EQ(p.updates_per_epoch, 3);
  EXPECT_EQ(p.max_steps, 6);
  EXPECT_EQ(p.WindowSize(0), 3);
  EXPECT_EQ(p.WindowSize(2), 2);
  EXPECT_EQ(p.WindowStart(2), 6);
  EXPECT_DOUBLE_EQ(p.EpochAfterUpdate(0, 0), 3.0 / 8);
  EXPECT_DOUBLE_EQ(p.EpochAfterUpdate(0, 2), 1.0);
}

TEST(StepPlan, DropLastFloorsMicroBatches) {
  StepPlan p = Plan(37, 5, 1, 1, -1, /*drop_last=*/true);
  EXPECT_EQ(p.micro_batches_per_epoch, 7);
  EXPECT_EQ(p.MicroBatchSize(6), 5);
}

TEST(StepPlan, MaxStepsOverridesEpochs) {
  StepPlan p = Plan(37, 5, 1, 100, /*max_steps=*/20);
  EXPECT_EQ(p.max_steps, 20);
  EXPECT_EQ(p.num_epochs, 3);  // ceil(20 / 8)
}

TEST(StepPlan, FractionalEpochsRoundStepsUp) {
  StepPlan p = Plan(37, 5, 1, 1.5);
  EXPECT_EQ(p.max_steps, 12);
  EXPECT_EQ(p.num_epochs, 2);
}

TEST(StepPlan, NoBatchIsAnError) {
  TrainingArgs a;
  a.per_device_train_batch_size = 8;
  a.dataloader_drop_last = true;
  StepPlan p;
  EXPECT_TRUE(ComputeStepPlan(a, 5, &p).IsInvalidArgument());
}

TEST(StepPlan, IntervalsBelowOneAreRatios) {
  EXPECT_EQ(ResolveInterval(0.25, 16), 4);
  EXPECT_EQ(ResolveInterval(0.1, 16), 2);
  EXPECT_EQ(ResolveInterval(500, 16), 500);
}

// HF's speed_metrics (issue 10, finding 10): samples are max_steps x the total batch when
// max_steps is set, else the dataset times the epochs; never steps x a batch the dataset
// cannot fill.
TEST(SpeedMetrics, CountSamplesAsHfDoes) {
  TrainingArgs a;
  a.per_device_train_batch_size = 8;
  a.gradient_accumulation_steps = 2;
  a.max_steps = 10;
  StepPlan p;
  ASSERT_TRUE(ComputeStepPlan(a, 1024, &p).ok());
  nlohmann::json m = SpeedMetrics(a, p, 1024, 2.0);
  EXPECT_DOUBLE_EQ(m["train_samples_per_second"].get<double>(), 80.0);  // 10 x 16 / 2 s
  EXPECT_DOUBLE_EQ(m["train_steps_per_second"].get<double>(), 5.0);

  TrainingArgs epochs;
  epochs.num_train_epochs = 3;
  epochs.per_device_train_batch_size = 99999999999;  // one short batch per epoch
  ASSERT_TRUE(ComputeStepPlan(epochs, 1024, &p).ok());
  m = SpeedMetrics(epochs, p, 1024, 4.0);
  EXPECT_DOUBLE_EQ(m["train_samples_per_second"].get<double>(), 768.0);  // 1024 x 3 / 4 s
  EXPECT_DOUBLE_EQ(m["train_steps_per_second"].get<double>(), 0.75);     // 3 steps / 4 s
}

TEST(SpeedMetrics, RoundAsHfAndOmitRatesForAZeroRuntime) {
  TrainingArgs a;
  StepPlan p;
  ASSERT_TRUE(ComputeStepPlan(a, 1000, &p).ok());
  nlohmann::json m = SpeedMetrics(a, p, 1000, 3.0);
  EXPECT_DOUBLE_EQ(m["train_runtime"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(m["train_samples_per_second"].get<double>(), 1000.0);  // 3000 / 3
  EXPECT_DOUBLE_EQ(m["train_steps_per_second"].get<double>(), 125.0);     // 375 / 3
  m = SpeedMetrics(a, p, 1000, 0.123456789);
  EXPECT_DOUBLE_EQ(m["train_runtime"].get<double>(), 0.1235);
  EXPECT_DOUBLE_EQ(m["train_steps_per_second"].get<double>(), 3037.5);  // round(3037.50003..., 3)
  m = SpeedMetrics(a, p, 1000, 0.0);
  EXPECT_FALSE(m.contains("train_samples_per_second"));
}

}  // namespace lockstep

namespace lockstep {

// Issue 21, finding 8: --max_steps 9223372036854775807 overflowed the epoch count (it
// "finished" 0 steps with num_epochs -72057594037927935). A plan past 2^53 samples is refused.
TEST(StepPlan, APlanPastWhatItsCountersHoldIsRefused) {
  TrainingArgs a;
  a.per_device_train_batch_size = 8;
  StepPlan p;
  for (int64_t steps : {int64_t{9223372036854775807}, int64_t{1} << 51}) {
    a.max_steps = steps;
    const Status st = ComputeStepPlan(a, 100, &p);
    EXPECT_TRUE(st.IsInvalidArgument()) << steps << ": " << st.ToString();
    EXPECT_NE(st.message().find("more than 2^53 samples"), std::string::npos) << st.message();
  }
  a.max_steps = -1;
  a.num_train_epochs = 1e300;
  EXPECT_TRUE(ComputeStepPlan(a, 100, &p).IsInvalidArgument());
  a.max_steps = int64_t{1} << 50;  // 2^53 samples of 8: the largest plan there is
  ASSERT_TRUE(ComputeStepPlan(a, 100, &p).ok());
  EXPECT_EQ(p.num_epochs, ((int64_t{1} << 50) - 1) / 13 + 1);
}

}  // namespace lockstep

namespace lockstep {
namespace {

// world_invariant: the plan is the job's global micro-batches, the same at every world size
// keeping per_device_train_batch_size x world_size; each rank takes a contiguous share of the
// units, and together the ranks take every unit once, in order.
TEST(StepPlan, WorldInvariantPlanIsTheSameAtEveryWorldSizeAndItsUnitsArePartitioned) {
  const auto plan = [](int64_t world, int64_t rank, int64_t unit) {
    TrainingArgs a;
    a.per_device_train_batch_size = 12 / world;
    a.gradient_accumulation_steps = 2;
    a.world_size = world;
    a.world_invariant = true;
    a.world_invariant_unit = unit;
    a.num_train_epochs = 1;
    StepPlan p;
    EXPECT_TRUE(ComputeStepPlan(a, 50, &p, rank).ok());
    return p;
  };
  for (int64_t unit : {1, 2, 3}) {
    for (int64_t world : {1, 2, 3, 4}) {
      const StepPlan p = plan(world, 0, unit);
      EXPECT_EQ(p.batch_size, 12);
      EXPECT_EQ(p.micro_batches_per_epoch, 5);  // 4 x 12 and a short 2
      EXPECT_EQ(p.updates_per_epoch, 3);
      for (int64_t m = 0; m < p.micro_batches_per_epoch; ++m) {
        int64_t next = 0;
        for (int64_t r = 0; r < world; ++r) {
          const auto [first, end] = plan(world, r, unit).RankUnits(m);
          EXPECT_EQ(first, next) << "world " << world << " rank " << r << " micro-batch " << m;
          EXPECT_GE(end, first);
          next = end;
        }
        EXPECT_EQ(next, (p.MicroBatchSize(m) + unit - 1) / unit);
      }
    }
  }
  TrainingArgs a;
  a.per_device_train_batch_size = 5;
  a.world_invariant = true;
  a.world_invariant_unit = 2;
  StepPlan p;
  const Status st = ComputeStepPlan(a, 50, &p);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("must be a multiple of world_invariant_unit (2)"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace lockstep
