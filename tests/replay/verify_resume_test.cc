// verify-resume end to end, with real child `lockstep train` processes: bit-exact through
// stops, every checkpoint and SIGKILLs on both models; each injected fault caught at the
// step and field where it first shows.
#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include <numeric>

#include "replay/verify_resume.h"
#include "tests/run_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

// 77 samples in batches of 5 (16 micro-batches), accumulation 3: windows 3,3,3,3,3,1, so
// 6 updates per epoch and 12 steps in 2 epochs; saves at 4, 8 and 12.
VerifyResumeOptions Options(const std::string& model, const std::string& work_dir) {
  VerifyResumeOptions o;
  o.lockstep_binary = LOCKSTEP_BIN;
  o.args = test::Tiny(model, work_dir);  // warmup 2, dropout 0.1
  o.args.train_samples = 77;
  o.args.gradient_accumulation_steps = 3;
  o.args.logging_steps = 5;
  o.args.save_steps = 4;
  return o;
}

VerifyResumeReport Verify(const VerifyResumeOptions& o) {
  VerifyResumeReport r;
  Status st = VerifyResume(o, &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return r;
}

void ExpectBitExact(const VerifyResumeReport& r) {
  EXPECT_TRUE(r.bit_exact());
  for (const auto& v : r.variants) {
    SCOPED_TRACE(v.name);
    EXPECT_TRUE(v.diff.identical()) << (v.diff.first_divergence ? v.diff.first_divergence->ToString() : "");
    EXPECT_EQ(v.diff.steps_matching, 12);
    ASSERT_FALSE(v.diff.checkpoints.empty());
    EXPECT_EQ(v.diff.checkpoints.back().name, "checkpoint-12");
    EXPECT_GT(v.diff.checkpoints.back().tensors_compared, 0);
    EXPECT_TRUE(v.diff.results.empty());
    for (const auto& in : v.interruptions) EXPECT_GE(in.resumed_at, 0) << in.how;
  }
}

}  // namespace

class VerifyResumeBitExact : public ::testing::TestWithParam<std::string> {};

// Stops mid-epoch (2, 9) and at the epoch boundary (6), every checkpoint in turn, and
// real SIGKILLs, half of them aimed inside checkpoint writes.
TEST_P(VerifyResumeBitExact, StopsEveryCheckpointAndKills) {
  test::ScratchDir dir;
  VerifyResumeOptions o = Options(GetParam(), dir.Join("verify"));
  o.interrupt_at = {2, 6, 9};
  o.every_checkpoint = true;
  o.kill_random = 3;
  o.kill_seed = 7;
  VerifyResumeReport r = Verify(o);
  EXPECT_EQ(r.max_steps, 12);
  EXPECT_EQ(r.save_steps, std::vector<int64_t>({4, 8, 12}));
  ASSERT_EQ(r.variants.size(), 5u);
  ExpectBitExact(r);
  EXPECT_EQ(r.variants[0].name, "interrupt-2");
  EXPECT_EQ(r.variants[0].interruptions.at(0).resumed_at, 2);
  EXPECT_EQ(r.variants[1].interruptions.at(0).resumed_at, 6);
  EXPECT_EQ(r.variants[3].name, "every-checkpoint");
  EXPECT_EQ(r.variants[3].interruptions.size(), 2u);  // at 4 and 8
  const VariantReport& kills = r.variants[4];
  EXPECT_EQ(kills.name, "kill-random");
  EXPECT_LE(kills.interruptions.size(), 3u);
  EXPECT_GE(kills.interruptions.size(), 1u);
  for (const auto& in : kills.interruptions) EXPECT_NE(in.how.find("SIGKILL"), std::string::npos);
  EXPECT_TRUE(fs::exists(dir.Join("verify/verify_report.json")));
  // The children's training loops, summed: at least the reference's own run, and less than
  // the verifier's wall time (their start-up and the comparisons come on top).
  EXPECT_GT(r.children_training_s, 0);
  EXPECT_LT(r.children_training_s,
            r.reference_seconds + std::accumulate(r.variants.begin(), r.variants.end(), 0.0,
                                                  [](double s, const VariantReport& v) { return s + v.seconds; }));
}

INSTANTIATE_TEST_SUITE_P(BothModels, VerifyResumeBitExact, ::testing::Values("mlp", "gpt"));

struct FaultCase {
  ResumeFault fault;
  int64_t step;  // where it first shows, resuming after step 8
  std::string where;
  std::string field;  // prefix of the divergent field
};

// Names the case in test output (and ctest's list) instead of dumping its bytes.
void PrintTo(const FaultCase& c, std::ostream* os) {
  *os << "fault " << ResumeFaultName(c.fault) << ", first seen at step " << c.step << " in the " << c.where
      << ", field " << c.field;
}

class VerifyResumeCatchesFault : public ::testing::TestWithParam<FaultCase> {};

TEST_P(VerifyResumeCatchesFault, AtTheRightStepAndField) {
  const FaultCase& c = GetParam();
  test::ScratchDir dir;
  VerifyResumeOptions o = Options("mlp", dir.Join("verify"));
  o.interrupt_at = {8};  // mid-epoch 2, between the logging steps 5 and 10
  o.fault = c.fault;
  VerifyResumeReport r = Verify(o);
  ASSERT_EQ(r.variants.size(), 1u);
  EXPECT_FALSE(r.bit_exact());
  const auto first = r.variants[0].diff.first_divergence;
  ASSERT_TRUE(first);
  EXPECT_EQ(first->step, c.step) << first->ToString();
  EXPECT_EQ(first->where, c.where) << first->ToString();
  EXPECT_EQ(first->field.rfind(c.field, 0), 0u) << first->ToString();
  EXPECT_EQ(r.variants[0].diff.candidate_resumes.at(0)["fault_injected"], ResumeFaultName(c.fault));
  // The reference trainer keeps its loss sums, so a train_loss that differs is a divergence
  // among the results, never excused as the HF Trainer's resume bookkeeping.
  for (const auto& note : r.variants[0].diff.notes) EXPECT_EQ(note.find("bookkeeping"), std::string::npos) << note;
  if (c.fault == ResumeFault::kLossSums) {
    const auto& results = r.variants[0].diff.results;
    EXPECT_TRUE(std::any_of(results.begin(), results.end(),
                            [](const Divergence& d) { return d.field.find("train_loss") != std::string::npos; }));
  }
}

INSTANTIATE_TEST_SUITE_P(FiveFaults, VerifyResumeCatchesFault,
                         ::testing::Values(
                             // The dropout draws of the first resumed step come from the wrong generator state
                             // (rng.cpu on a CPU run, rng.cuda on a GPU, where dropout draws).
                             FaultCase{ResumeFault::kRng, 9, "step log", "rng.c"},
                             // The data restarts at epoch 0, position 0.
                             FaultCase{ResumeFault::kSamplerPosition, 9, "step log", "sampler."},
                             // Step 9's loss uses the restored weights; its update, with fresh moments, does not.
                             FaultCase{ResumeFault::kOptimizer, 10, "step log", "loss_bits"},
                             FaultCase{ResumeFault::kScheduler, 9, "step log", "lr"},
                             // Losses are right; the logged mean at step 10 lost steps 6..8.
                             FaultCase{ResumeFault::kLossSums, 10, "trainer_state.json", "log_history[1].loss"}),
                         [](const ::testing::TestParamInfo<FaultCase>& info) {
                           std::string name = ResumeFaultName(info.param.fault);
                           for (auto& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

TEST(VerifyResume, BadInterruptStepIsRefusedBeforeAnyRun) {
  test::ScratchDir dir;
  VerifyResumeOptions o = Options("mlp", dir.Join("verify"));
  o.interrupt_at = {12};
  VerifyResumeReport r;
  Status st = VerifyResume(o, &r);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("--interrupt-at 12: must be between 1 and 11"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(dir.Join("verify")));
}

TEST(VerifyResume, DuplicateInterruptStepsAreRefusedBeforeAnyRun) {
  test::ScratchDir dir;
  VerifyResumeOptions o = Options("mlp", dir.Join("verify"));
  o.interrupt_at = {5, 3, 5};
  VerifyResumeReport r;
  Status st = VerifyResume(o, &r);
  ASSERT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_NE(st.message().find("--interrupt-at names step 5 twice"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(dir.Join("verify")));
}

// Issue 10, finding 8: the same --kill-seed must replay the same crashes. Crash points are
// exact I/O calls of saves, so two verifications crash at the same points, byte for byte.
TEST(VerifyResume, CrashPointsReplayTheSameCrashesWithTheSameSeed) {
  test::ScratchDir dir;
  std::vector<std::vector<std::string>> plans;
  for (const char* name : {"first", "second"}) {
    VerifyResumeOptions o = Options("mlp", dir.Join(name));
    o.crash_points = 4;
    o.kill_seed = 7;
    const VerifyResumeReport r = Verify(o);
    ExpectBitExact(r);
    ASSERT_EQ(r.variants.size(), 1u);
    EXPECT_EQ(r.save_io_calls.size(), r.save_steps.size());
    std::vector<std::string> plan;
    for (const auto& in : r.variants[0].interruptions) {
      EXPECT_TRUE(in.during_checkpoint_write) << in.how;
      plan.push_back(in.how + " -> resumed at " + std::to_string(in.resumed_at));
    }
    EXPECT_EQ(plan.size(), 4u);
    plans.push_back(plan);
  }
  EXPECT_EQ(plans[0], plans[1]);
}

// --save_async: checkpoints written in the background while training goes on resume
// bit-exactly, after stops, SIGKILLs at any time and crashes at exact I/O calls of the
// background write (the probe counts the checkpoint's calls, not the step log's).
TEST(VerifyResume, BackgroundSavesResumeBitExactAfterStopsKillsAndCrashes) {
  test::ScratchDir dir;
  VerifyResumeOptions o = Options("gpt", dir.Join("verify"));
  o.args.save_async = true;
  o.every_checkpoint = true;
  o.kill_random = 2;
  o.crash_points = 2;
  const VerifyResumeReport r = Verify(o);
  ExpectBitExact(r);
  EXPECT_EQ(r.variants.size(), 3u);
  EXPECT_EQ(r.save_io_calls.size(), r.save_steps.size());
  for (int64_t calls : r.save_io_calls) EXPECT_GT(calls, 8);  // at least a write per state file
}

// Issue 13: a data-parallel job of 2 ranks (Gloo on loopback). 154 samples in batches of 5
// are 31 global batches, 16 per rank (the last round padded), so with accumulation 3 the
// job has the same 12 steps. Stops at every checkpoint, and SIGKILLs of single ranks (the
// job must come down at once, and resume bit-exact).
TEST(VerifyResume, ADataParallelJobResumesBitExactAfterStopsAndRankKills) {
  test::ScratchDir dir;
  if (!LOCKSTEP_CPU_DATA_PARALLEL) {  // the wheel's LibTorch (no Gloo headers): refused, saying why
    const auto out =
        test::RunCommand(std::string(LOCKSTEP_BIN) + " verify-resume --quiet --nproc_per_node 2 --output_dir " +
                         dir.Join("verify") + " 2>&1");
    EXPECT_EQ(out.code, 2) << out.out;
    EXPECT_NE(out.out.find("has Gloo built in but no headers for it"), std::string::npos) << out.out;
    return;
  }
  VerifyResumeOptions o = Options("mlp", dir.Join("verify"));
  o.args.train_samples = 154;
  o.args.world_size = 2;
  o.nproc_per_node = 2;
  o.every_checkpoint = true;
  o.kill_random = 3;
  o.kill_seed = 3;  // kills rank 1 and rank 0 both
  const VerifyResumeReport r = Verify(o);
  ExpectBitExact(r);
  ASSERT_EQ(r.variants.size(), 2u);
  std::string kills;
  for (const auto& in : r.variants[1].interruptions) kills += in.how + "; ";
  EXPECT_NE(kills.find("SIGKILL of rank"), std::string::npos) << kills;
}

TEST(VerifyResume, KillsNeedCheckpointsBeforeTheEnd) {
  test::ScratchDir dir;
  VerifyResumeOptions o = Options("mlp", dir.Join("verify"));
  o.args.save_steps = 500;
  o.kill_random = 2;
  VerifyResumeReport r;
  Status st = VerifyResume(o, &r);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("--save_steps"), std::string::npos) << st.message();
}

TEST(VerifyResume, OccupiedWorkDirIsRefusedUnlessOverwriting) {
  test::ScratchDir dir;
  VerifyResumeOptions o = Options("mlp", dir.path());
  o.interrupt_at = {5};
  Verify(o);
  VerifyResumeReport r;
  Status st = VerifyResume(o, &r);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("already holds a verify-resume run"), std::string::npos) << st.message();
  o.args.overwrite_output_dir = true;
  EXPECT_TRUE(VerifyResume(o, &r).ok());
}

TEST(VerifyResume, DefaultVariantsAreMidEpochAndTheEpochBoundary) {
  EXPECT_EQ(DefaultInterruptSteps(128, 384), std::vector<int64_t>({64, 128}));
  EXPECT_EQ(DefaultInterruptSteps(6, 6), std::vector<int64_t>({3}));
  EXPECT_EQ(DefaultInterruptSteps(1, 1), std::vector<int64_t>());
}

}  // namespace lockstep
