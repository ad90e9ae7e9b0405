// The thread count is part of the run (issue 10, finding 4): it changes the order of
// floating-point reductions, so a resume takes the checkpoint's count, not the
// environment's, and refuses a different one unless overridden. The step log's header
// records it with the BLAS library LibTorch runs on.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "formats/step_log.h"
#include "tests/same_run.h"
#include "tests/test_util.h"
#include "trainer/blas_info.h"

namespace lockstep {
namespace {

const std::string kBin = LOCKSTEP_BIN;
const char* kRun = " --quiet --json --train_samples 400 --hidden_size 64 --save_steps 50";

std::string Train(const std::string& env, const std::string& dir, const std::string& extra = "") {
  const auto o = test::RunCommand(env + " " + kBin + " train --output_dir " + dir + kRun + extra);
  EXPECT_EQ(o.code, 0) << o.out;
  return o.out;
}

TEST(ThreadCount, AResumeKeepsTheCheckpointsCountWhateverTheEnvironmentSays) {
  test::ScratchDir dir;
  Train("OMP_NUM_THREADS=1", dir.Join("reference"));
  Train("OMP_NUM_THREADS=1", dir.Join("resumed"), " --stop-after-step 70");
  const std::string out = Train("OMP_NUM_THREADS=2", dir.Join("resumed"), " --resume");
  EXPECT_NE(out.find("\"num_threads\": 1,"), std::string::npos) << out;
  EXPECT_TRUE(test::SameRun(dir.Join("reference"), dir.Join("resumed")));

  StepLogContents log;
  ASSERT_OK(ReadStepLog(dir.Join("resumed/") + kStepLogFile, &log));
  EXPECT_EQ(log.header["num_threads"], 1);
  EXPECT_EQ(log.header["training_args"]["num_threads"], 1);
  ASSERT_TRUE(log.header.contains("blas")) << log.header.dump();
  EXPECT_TRUE(log.header["blas"]["library"].is_string()) << log.header["blas"].dump();
}

// Issue 21, finding 1: OpenBLAS reads OMP_NUM_THREADS when it loads and splits a GEMM's sums
// by thread. On the gpt model (matrices large enough for OpenBLAS to thread) a resume under
// another OMP_NUM_THREADS used to part from step 34 with changed_settings []. The trainer now
// sets the BLAS count to the run's num_threads, and the header records it.
TEST(ThreadCount, TheBlasThreadCountIsTheRunsNotTheEnvironments) {
  test::ScratchDir dir;
  const std::string gpt = " --model gpt --train_samples 96 --per_device_train_batch_size 8 --num_train_epochs 4";
  Train("OMP_NUM_THREADS=1", dir.Join("reference"), gpt);
  Train("OMP_NUM_THREADS=1", dir.Join("resumed"), gpt + " --stop-after-step 12");
  Train("OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2", dir.Join("resumed"), gpt + " --resume");
  EXPECT_TRUE(test::SameRun(dir.Join("reference"), dir.Join("resumed")));
  StepLogContents log;
  ASSERT_OK(ReadStepLog(dir.Join("resumed/") + kStepLogFile, &log));
  EXPECT_EQ(log.header["blas"]["threads"], 1) << log.header["blas"].dump();
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].record["changed_settings"], nlohmann::json::array()) << log.events[0].record.dump();

  Train("OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2", dir.Join("one"), gpt + " --max_steps 1 --num_threads 1");
  ASSERT_OK(ReadStepLog(dir.Join("one/") + kStepLogFile, &log));
  EXPECT_EQ(log.header["blas"]["threads"], 1) << log.header["blas"].dump();
}

TEST(ThreadCount, AnotherCountOnResumeIsRefusedUnlessOverridden) {
  test::ScratchDir dir;
  Train("OMP_NUM_THREADS=1", dir.Join("run"), " --stop-after-step 70");
  const auto refused =
      test::RunCommand(kBin + " train --output_dir " + dir.Join("run") + kRun + " --resume --num_threads 2");
  EXPECT_EQ(refused.code, 2) << refused.out;
  EXPECT_NE(refused.out.find("num_threads: checkpoint 1, now 2"), std::string::npos) << refused.out;
  const std::string out = Train("", dir.Join("run"), " --resume --num_threads 2 --resume-override");
  EXPECT_NE(out.find("\"num_threads\": 2,"), std::string::npos) << out;
  StepLogContents log;
  ASSERT_OK(ReadStepLog(dir.Join("run/") + kStepLogFile, &log));
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].record["changed_settings"][0]["setting"], "num_threads") << log.events[0].record.dump();
  EXPECT_EQ(StepRecordJson(log.records.back()).value("resume_override", false), true);
}

}  // namespace
}  // namespace lockstep

namespace lockstep {
namespace {

// MKL (the PyPI wheel's BLAS) on an AVX-512 CPU returned last-bit differences from run to run
// unless its code branch was pinned: verify-resume said DIVERGED at step 3 in about 1 run in
// 10 under load. The trainer pins the branch unless the environment names one, the header
// records it, and a resume on another branch is refused as another BLAS would be.
TEST(BlasBranch, MklIsPinnedUnlessTheEnvironmentNamesABranchOtherBlasAreLeftAlone) {
  const char* before = std::getenv(kMklBranchVar);
  const std::string saved = before != nullptr ? before : "";
  ::unsetenv(kMklBranchVar);
  const bool mkl = PinBlasBranch();
  const char* pinned = std::getenv(kMklBranchVar);
  if (mkl) {
    ASSERT_NE(pinned, nullptr);
    EXPECT_TRUE(std::string(pinned) == "AVX2" || std::string(pinned) == "COMPATIBLE") << pinned;
    EXPECT_EQ(BlasInfo()["branch"], pinned);
  } else {
    EXPECT_EQ(pinned, nullptr) << "only MKL reads " << kMklBranchVar;
    EXPECT_TRUE(BlasInfo()["branch"].is_null()) << BlasInfo().dump();
  }
  ::setenv(kMklBranchVar, "COMPATIBLE", 1);
  EXPECT_EQ(PinBlasBranch(), mkl);
  EXPECT_STREQ(std::getenv(kMklBranchVar), "COMPATIBLE");  // the user's choice stands
  if (before != nullptr)
    ::setenv(kMklBranchVar, saved.c_str(), 1);
  else
    ::unsetenv(kMklBranchVar);

  const nlohmann::json rows = BlasChanges({{"library", "libtorch_cpu.so"}, {"branch", "AVX2"}},
                                          {{"library", "libtorch_cpu.so"}, {"branch", "COMPATIBLE"}});
  ASSERT_EQ(rows.size(), 1u) << rows.dump();
  EXPECT_EQ(rows[0]["setting"], "blas.branch");
  EXPECT_TRUE(BlasChanges({{"library", "x"}}, {{"library", "x"}, {"branch", "AVX2"}}).empty())
      << "a header written before the branch was recorded compares only what it holds";
}

TEST(BlasBranch, AResumeOnAnotherMklBranchIsRefusedNamingIt) {
  test::ScratchDir dir;
  Train(std::string("env -u ") + kMklBranchVar, dir.Join("run"), " --stop-after-step 70");
  StepLogContents log;
  ASSERT_OK(ReadStepLog(dir.Join("run/") + kStepLogFile, &log));
  const nlohmann::json branch = log.header["blas"]["branch"];
  const auto resumed = test::RunCommand(std::string(kMklBranchVar) + "=COMPATIBLE " + kBin + " train --output_dir " +
                                        dir.Join("run") + kRun + " --resume");
  if (branch.is_null()) {  // OpenBLAS (Debian's LibTorch): MKL_CBWR means nothing to it
    EXPECT_EQ(resumed.code, 0) << resumed.out;
    return;
  }
  EXPECT_TRUE(branch == "AVX2" || branch == "COMPATIBLE") << branch.dump();
  if (branch == "COMPATIBLE") return;  // a CPU without AVX2: the resume asks for the pinned branch itself
  EXPECT_EQ(resumed.code, 2) << resumed.out;
  EXPECT_NE(resumed.out.find("blas.branch: checkpoint \"AVX2\", now \"COMPATIBLE\""), std::string::npos) << resumed.out;
}

}  // namespace
}  // namespace lockstep
