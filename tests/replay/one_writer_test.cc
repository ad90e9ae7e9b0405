// One writer per run directory (issue 10, finding 1): train, resume, overwrite and
// verify-resume each hold output_dir's lock; a second writer exits 2 naming the holder,
// and touches nothing; a lock left by a dead process never blocks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "formats/run_lock.h"
#include "formats/step_log.h"
#include "inspect/audit.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

const std::string kBin = LOCKSTEP_BIN;
const char* kSmall = " --train_samples 40 --num_train_epochs 1 --save_steps 2 --quiet";

TEST(OneWriter, EveryWriterIsRefusedWhileAnotherHoldsTheDirectoryAndNamesIt) {
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  std::unique_ptr<RunLock> lock;
  ASSERT_OK(RunLock::Acquire(run, "the test", &lock));
  const std::string holder = "in use by PID " + std::to_string(::getpid());
  for (const std::string flags : {"", " --resume", " --overwrite_output_dir true"}) {
    const auto o = test::RunCommand(kBin + " train --output_dir " + run + kSmall + flags);
    EXPECT_EQ(o.code, 2) << flags << ": " << o.out;
    EXPECT_NE(o.out.find(holder), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("(the test, since"), std::string::npos) << o.out;
  }
  const auto v = test::RunCommand(kBin + " verify-resume --output_dir " + run + kSmall);
  EXPECT_EQ(v.code, 2) << v.out;
  EXPECT_NE(v.out.find(holder), std::string::npos) << v.out;
  EXPECT_FALSE(test::FileExists(run + "/" + kStepLogFile));  // nothing was written
  EXPECT_FALSE(test::FileExists(run + "/reference"));
}

TEST(OneWriter, ALockLeftByAKilledProcessNeverBlocks) {
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  const pid_t child = ::fork();
  if (child == 0) {
    std::unique_ptr<RunLock> lock;
    if (!RunLock::Acquire(run, "doomed", &lock).ok()) ::_exit(3);
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_NE(test::ReadAll(run + "/" + kRunLockFile).find("doomed"), std::string::npos);  // its record stays
  const auto o = test::RunCommand(kBin + " train --output_dir " + run + kSmall);
  EXPECT_EQ(o.code, 0) << o.out;
}

// The race a user starts by habit: the same command twice at once. One wins, the other is
// refused, and the run the winner leaves is intact.
TEST(OneWriter, TwoTrainsStartedTogetherLeaveOneIntactRun) {
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  // 2,000 steps (about 2 s): long enough that the two overlap even when one is slow to
  // load LibTorch on a busy machine; a short run can finish before the other starts, and
  // the second then (rightly) finds a finished run instead of a held lock.
  const std::string train =
      kBin + " train --output_dir " + run + " --train_samples 4000 --num_train_epochs 4 --save_steps 100 --quiet";
  const auto o = test::RunCommand("{ (" + train + "; echo exit=$?) & (" + train + "; echo exit=$?) & wait; }");
  EXPECT_NE(o.out.find("exit=0"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("exit=2"), std::string::npos) << o.out;
  // The holder's PID, or, when the loser looks inside the window between the winner taking
  // the lock and writing its details into it, that another process holds it.
  EXPECT_NE(o.out.find(run + " is in use by "), std::string::npos) << o.out;
  AuditOptions verify;
  verify.verify = true;
  AuditReport audit;
  ASSERT_OK(AuditRun(run, verify, &audit));
  EXPECT_TRUE(audit.healthy()) << AuditReportJson(audit).dump(2);
}

}  // namespace
}  // namespace lockstep
