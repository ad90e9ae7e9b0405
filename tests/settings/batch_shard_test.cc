// Data-parallel sharding (settings/batch_shard.h) against accelerate's BatchSamplerShard:
// hand-checked cases, and 240 cases computed by a line-for-line transcription of its
// _iter_with_no_split (tests/fixtures/accelerate/shard_cases.py).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "settings/batch_shard.h"

namespace lockstep {
namespace {

using Batches = std::vector<std::vector<int64_t>>;

TEST(BatchShard, RoundRobinWithTheTailPaddedFromTheEpochsStart) {
  // 10 samples, batch 3, 2 ranks: batches [0 1 2] [3 4 5] [6 7 8] [9]; the short one is
  // filled with 0 1 so both ranks get two full batches.
  EXPECT_EQ(ShardEpoch(10, 3, 2, 0, false), (Batches{{0, 1, 2}, {6, 7, 8}}));
  EXPECT_EQ(ShardEpoch(10, 3, 2, 1, false), (Batches{{3, 4, 5}, {9, 0, 1}}));
  // An incomplete last round gets a whole padded batch: 9 samples, batch 3, 2 ranks.
  EXPECT_EQ(ShardEpoch(9, 3, 2, 1, false), (Batches{{3, 4, 5}, {0, 1, 2}}));
  // drop_last drops the short batch and the incomplete round.
  EXPECT_EQ(ShardEpoch(10, 3, 2, 0, true), (Batches{{0, 1, 2}}));
  EXPECT_EQ(ShardEpoch(10, 3, 2, 1, true), (Batches{{3, 4, 5}}));
}

TEST(BatchShard, OneProcessIsNotShardedAndKeepsItsShortLastBatch) {
  EXPECT_EQ(ShardEpoch(7, 3, 1, 0, false), (Batches{{0, 1, 2}, {3, 4, 5}, {6}}));
  EXPECT_EQ(ShardEpoch(7, 3, 1, 0, true), (Batches{{0, 1, 2}, {3, 4, 5}}));
}

TEST(BatchShard, FewerSamplesThanOneRoundCycleTheEpoch) {
  EXPECT_EQ(ShardEpoch(2, 3, 2, 0, false), (Batches{{0, 1, 0}}));
  EXPECT_EQ(ShardEpoch(2, 3, 2, 1, false), (Batches{{1, 0, 1}}));
}

TEST(BatchShard, MatchesAccelerateOnEveryCase) {
  std::ifstream in(std::string(LOCKSTEP_FIXTURES_DIR) + "/accelerate/accelerate_shard_cases.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases.size(), 240u);
  for (const auto& c : cases) {
    const int64_t world = c["P"];
    for (int64_t r = 0; r < world; ++r) {
      EXPECT_EQ(ShardEpoch(c["n"], c["bs"], world, r, c["drop_last"]), c["ranks"][r].get<Batches>())
          << "n " << c["n"] << " batch " << c["bs"] << " world " << world << " rank " << r << " drop_last "
          << c["drop_last"];
    }
  }
}

}  // namespace
}  // namespace lockstep
