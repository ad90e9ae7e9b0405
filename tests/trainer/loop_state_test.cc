// loop_state.json: HF's loss bookkeeping and the step log position survive a checkpoint
// bit for bit; a damaged file is Corruption naming it, never an exception.
#include "trainer/loop_state.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

TEST(LossTotals, LogsTheMeanSinceTheLastLogAndEndsWithHfsTrainLoss) {
  LossTotals t;
  t.Add(1.0f);
  t.Add(3.0f);
  EXPECT_DOUBLE_EQ(t.TakeLogged(2), 2.0);  // (1 + 3) / 2 steps
  EXPECT_EQ(t.tr_loss(), 0.0f);
  t.Add(5.0f);
  EXPECT_DOUBLE_EQ(t.TakeLogged(3), 5.0);
  t.Add(7.0f);                                 // step 4, not logged
  EXPECT_DOUBLE_EQ(t.TrainLoss(4), 16.0 / 4);  // the unlogged remainder counts
}

TEST(LoopState, RoundTripsTheLossBitsAndTheStepLogPosition) {
  LoopState s;
  s.losses.Restore(0.1f + 0.2f, 12.5, 6);
  s.dataset_xxh3_128 = "00112233445566778899aabbccddeeff";
  s.step_log = StepLogPosition{4096, 3900, "ffeeddccbbaa99887766554433221100"};
  LoopState back;
  ASSERT_TRUE(LoopState::FromJson(s.ToJson(), "ck/loop_state.json", &back).ok());
  EXPECT_EQ(FloatBits(back.losses.tr_loss()), FloatBits(0.1f + 0.2f));
  EXPECT_EQ(back.losses.total_loss(), 12.5);
  EXPECT_EQ(back.losses.last_logged_step(), 6);
  EXPECT_EQ(back.dataset_xxh3_128, s.dataset_xxh3_128);
  ASSERT_TRUE(back.step_log.has_value());
  EXPECT_EQ(back.step_log->bytes, 4096u);
  EXPECT_EQ(back.step_log->last_frame, 3900u);
  EXPECT_EQ(back.step_log->xxh3_128, s.step_log->xxh3_128);
}

TEST(LoopState, AnOlderCheckpointWithoutAStepLogPositionIsRead) {
  nlohmann::json saved = {{"tr_loss_bits", "0x3f800000"}, {"total_loss", 2.0}, {"globalstep_last_logged", 2}};
  LoopState back;
  ASSERT_TRUE(LoopState::FromJson(saved, "ck/loop_state.json", &back).ok());
  EXPECT_EQ(back.losses.tr_loss(), 1.0f);
  EXPECT_FALSE(back.step_log.has_value());
}

TEST(LoopState, DamagedFieldsAreCorruptionNamingTheFile) {
  const nlohmann::json good = {{"tr_loss_bits", "0x3f800000"}, {"total_loss", 2.0}, {"globalstep_last_logged", 2}};
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, nlohmann::json>>{{"tr_loss_bits", "0x1ffffffff"},
                                                           {"tr_loss_bits", "zz"},
                                                           {"tr_loss_bits", 7},
                                                           {"total_loss", "2"},
                                                           {"globalstep_last_logged", 2.5}}) {
    nlohmann::json bad = good;
    bad[field] = value;
    LoopState back;
    const Status st = LoopState::FromJson(bad, "ck/loop_state.json", &back);
    EXPECT_TRUE(st.IsCorruption()) << field << "=" << value.dump();
    EXPECT_EQ(st.message().rfind("ck/loop_state.json: ", 0), 0u) << st.message();
  }
}

}  // namespace
}  // namespace lockstep
