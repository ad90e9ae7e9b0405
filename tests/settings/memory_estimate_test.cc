// A model or batch that cannot fit is refused up front, with the estimate (issue 10,
// finding 10: --hidden_size 100000000 used to run until killed).
#include <gtest/gtest.h>

#include "settings/memory_estimate.h"

namespace lockstep {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

TEST(MemoryEstimate, CountsTheParametersOfBothModels) {
  TrainingArgs mlp;  // 32 -> 128 -> 8, with a LayerNorm
  EXPECT_DOUBLE_EQ(EstimateMemory(mlp).parameters, 32 * 128 + 128 + 2 * 128 + 128 * 8 + 8);
  TrainingArgs gpt;
  gpt.model = "gpt";  // the trainer's step-log header reports 5512 and 110336 for these defaults
  EXPECT_DOUBLE_EQ(EstimateMemory(gpt).parameters, 110336);
}

TEST(MemoryEstimate, RefusesAHugeModelNamingTheEstimateAndFitsTheDefault) {
  TrainingArgs a;
  EXPECT_TRUE(CheckMemoryFits(a, 16 * kGiB).ok());
  a.hidden_size = 100000000;
  const Status st = CheckMemoryFits(a, 16 * kGiB);
  ASSERT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_NE(st.message().find("this run needs about 82.0 GiB"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("but 16.0 GiB is available"), std::string::npos) << st.message();
  EXPECT_TRUE(CheckMemoryFits(a, 0).ok());  // unknown: never refused
}

TEST(MemoryEstimate, CountsTheMicroBatchNotTheBatchSizeAsked) {
  TrainingArgs a;
  a.per_device_train_batch_size = 99999999999;  // capped by the 1024 samples
  EXPECT_TRUE(CheckMemoryFits(a, kGiB).ok());
  a.model = "gpt";
  a.block_size = 4096;
  a.train_samples = 64;
  EXPECT_TRUE(CheckMemoryFits(a, 16 * kGiB).IsInvalidArgument());  // attention is T x T
}

}  // namespace
}  // namespace lockstep
