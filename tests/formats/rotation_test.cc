#include "formats/rotation.h"

#include <gtest/gtest.h>

namespace lockstep {

using Steps = std::vector<int64_t>;

TEST(Rotation, KeepsAllWithoutLimitOrUnderIt) {
  EXPECT_TRUE(CheckpointsToDelete({1, 2, 3}, kNoBestStep, 0).empty());
  EXPECT_TRUE(CheckpointsToDelete({1, 2, 3}, kNoBestStep, 3).empty());
}

TEST(Rotation, DeletesOldestBeyondLimit) {
  EXPECT_EQ(CheckpointsToDelete({30, 10, 20, 40}, kNoBestStep, 2), (Steps{10, 20}));
}

TEST(Rotation, HfFixtureRunKeepsBestAndLast) {
  // transformers 5.17, save/eval every 3, limit 2, best at step 3, run ends at 16.
  EXPECT_EQ(CheckpointsToDelete({3, 6, 9}, 3, 2), (Steps{6}));
  EXPECT_EQ(CheckpointsToDelete({3, 9, 12}, 3, 2), (Steps{9}));
  EXPECT_EQ(CheckpointsToDelete({3, 15, 16}, 3, 2), (Steps{15}));
}

TEST(Rotation, LimitOneWithOlderBestKeepsTwo) { EXPECT_EQ(CheckpointsToDelete({2, 4, 6}, 2, 1), (Steps{4})); }

TEST(Rotation, LimitOneWithNewestBestKeepsOne) { EXPECT_EQ(CheckpointsToDelete({2, 4, 6}, 6, 1), (Steps{2, 4})); }

TEST(Rotation, BestNotAmongCheckpointsIsIgnoredForOrdering) {
  EXPECT_EQ(CheckpointsToDelete({2, 4, 6}, 99, 2), (Steps{2}));
}

}  // namespace lockstep
