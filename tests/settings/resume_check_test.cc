// Which settings a resume may change: the world size of a world_invariant run, with its
// global micro-batch kept, and a knob an older checkpoint lacks left at its default.
#include "settings/resume_check.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

using nlohmann::json;

TrainingArgs Args(int64_t world, int64_t per_device, bool invariant) {
  TrainingArgs a;
  a.world_size = world;
  a.per_device_train_batch_size = per_device;
  a.world_invariant = invariant;
  return a;
}

std::vector<SettingChange> Changes(const TrainingArgs& saved, const TrainingArgs& now) {
  std::vector<SettingChange> changes;
  EXPECT_TRUE(DiffResumeSettings(TrainingArgsToJson(saved), "ckpt", now, &changes).ok());
  return changes;
}

TEST(ResumeCheck, AWorldInvariantRunResumesAtAnotherWorldSizeKeepingItsGlobalMicroBatch) {
  for (const auto& [world, per_device] : std::vector<std::pair<int64_t, int64_t>>{{1, 6}, {3, 2}, {6, 1}}) {
    const auto changes = Changes(Args(2, 3, true), Args(world, per_device, true));
    ASSERT_FALSE(changes.empty());
    for (const auto& c : changes) EXPECT_TRUE(c.safe) << c.knob;
    EXPECT_TRUE(CheckResumeSettings(changes, "ckpt", false).ok());
  }
}

TEST(ResumeCheck, AnyOtherChangeOfWorldSizeIsRefusedSayingWhy) {
  struct Case {
    TrainingArgs saved, now;
    std::string why;
  };
  const std::vector<Case> cases = {
      {Args(2, 3, false), Args(1, 6, false), "only a run trained with --world_invariant"},
      {Args(2, 3, false), Args(1, 6, true), "only a run trained with --world_invariant"},
      {Args(2, 3, true), Args(3, 3, true), "at 3 ranks pass --per_device_train_batch_size 2"},
      {Args(2, 3, true), Args(4, 2, true), "which 4 ranks do not divide"},
  };
  for (const auto& c : cases) {
    const Status st = CheckResumeSettings(Changes(c.saved, c.now), "ckpt", false);
    EXPECT_TRUE(st.IsInvalidArgument());
    EXPECT_NE(st.message().find("world_size: checkpoint 2"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(c.why), std::string::npos) << st.message();
  }
}

TEST(ResumeCheck, AKnobAnOlderCheckpointLacksIsUnchangedAtItsDefault) {
  json saved = TrainingArgsToJson(TrainingArgs());
  saved.erase("world_invariant");
  saved.erase("world_invariant_unit");
  std::vector<SettingChange> changes;
  ASSERT_TRUE(DiffResumeSettings(saved, "ckpt", TrainingArgs(), &changes).ok());
  EXPECT_TRUE(changes.empty());
  TrainingArgs now;
  now.world_invariant = true;  // not the default: a change the checkpoint cannot have made
  ASSERT_TRUE(DiffResumeSettings(saved, "ckpt", now, &changes).ok());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].knob, "world_invariant");
  EXPECT_EQ(changes[0].checkpoint, "(absent)");
  EXPECT_FALSE(changes[0].safe);
}

}  // namespace
}  // namespace lockstep
