// Preemption as clusters send it (issue 10, finding 6): SIGTERM or SIGINT lets the current
// optimizer step finish, saves a checkpoint, flushes the step log, says so, and exits
// 143 or 130; the resume is bit-exact. A second signal exits at once. Leftovers of a dead
// save are removed at the next start, never while their writer holds the lock.
#include <signal.h>
#include <sys/stat.h>

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "formats/checkpoint.h"
#include "formats/run_lock.h"
#include "inspect/audit.h"
#include "process/child_process.h"
#include "tests/same_run.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

const std::string kBin = LOCKSTEP_BIN;
// 768 steps of a wider MLP: long enough that a signal lands mid-run.
const char* kRun = " --quiet --train_samples 2048 --hidden_size 256 --save_steps 200";

struct Stopped {
  int exit_code = 0;
  int64_t signalled_after = 0;  // the last step event before the signal was sent
  std::string err;
};

// Starts `lockstep train` in `dir`, sends `signals` (each once, back to back) after step
// `at`, and waits for the process.
Stopped TrainAndSignal(const std::string& dir, int64_t at, std::vector<int> signals,
                       std::vector<std::string> argv_extra = {}) {
  const std::string err = dir + ".stderr";
  std::vector<std::string> argv = {kBin, "train", "--output_dir", dir, "--event-fd", "3"};
  argv.insert(argv.end(), argv_extra.begin(), argv_extra.end());
  for (const std::string& a : {"--quiet", "--train_samples", "2048", "--hidden_size", "256", "--save_steps", "200"}) {
    argv.push_back(a);
  }
  std::unique_ptr<ChildProcess> child;
  Stopped s;
  EXPECT_OK(ChildProcess::Start(argv, dir + ".stdout", err, &child));
  std::string name;
  int64_t step = 0;
  while (child->NextEvent(60, &name, &step) == ChildProcess::Next::kEvent) {
    if (name != "step" || step != at) continue;
    s.signalled_after = step;
    for (int sig : signals) ::kill(child->pid(), sig);
  }
  int code = 0, sig = 0;
  EXPECT_OK(child->Wait(&code, &sig));
  s.exit_code = sig != 0 ? -sig : code;
  s.err = test::ReadAll(err);
  return s;
}

void ExpectResumesBitExact(const std::string& dir, const std::string& reference) {
  const auto o = test::RunCommand(kBin + " train --output_dir " + dir + kRun + " --resume");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_TRUE(test::SameRun(reference, dir));
}

class Preemption : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = new test::ScratchDir;
    const auto o = test::RunCommand(kBin + " train --output_dir " + reference_->Join("run") + kRun);
    ASSERT_EQ(o.code, 0) << o.out;
  }
  static void TearDownTestSuite() { delete reference_; }
  static std::string Reference() { return reference_->Join("run"); }
  static test::ScratchDir* reference_;
};
test::ScratchDir* Preemption::reference_ = nullptr;

TEST_F(Preemption, SigtermAndSigintStopWithACheckpointAndResumeBitExact) {
  for (const auto& [sig, code, name] :
       {std::make_tuple(SIGTERM, 143, "SIGTERM"), std::make_tuple(SIGINT, 130, "SIGINT")}) {
    SCOPED_TRACE(name);
    test::ScratchDir dir;
    const std::string run = dir.Join("run");
    const Stopped s = TrainAndSignal(run, 100, {sig});
    EXPECT_EQ(s.exit_code, code) << s.err;
    EXPECT_NE(s.err.find(std::string("stopped by ") + name + " after step"), std::string::npos) << s.err;
    std::vector<CheckpointDir> dirs;
    ASSERT_OK(ListCheckpointDirs(run, &dirs));
    ASSERT_FALSE(dirs.empty());
    EXPECT_GT(dirs.back().step, s.signalled_after - 1);  // the step it was in, checkpointed
    EXPECT_LT(dirs.back().step, 200);
    AuditReport audit;
    ASSERT_OK(AuditRun(run, AuditOptions{}, &audit));
    EXPECT_TRUE(audit.healthy()) << AuditReportJson(audit).dump(2);  // no staging leftover
    ExpectResumesBitExact(run, Reference());
  }
}

// With --save_async, a signal just after a save began: the stop's own save waits for the
// one in flight, both commit, and the run exits only after the last is committed.
TEST_F(Preemption, ASignalDuringABackgroundSaveCommitsItAndTheStopsCheckpoint) {
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  const Stopped s = TrainAndSignal(run, 201, {SIGTERM}, {"--save_async", "true"});  // save 200 just began
  EXPECT_EQ(s.exit_code, 143) << s.err;
  std::vector<CheckpointDir> dirs;
  ASSERT_OK(ListCheckpointDirs(run, &dirs));
  ASSERT_EQ(dirs.size(), 2u);
  EXPECT_EQ(dirs[0].step, 200);
  EXPECT_GT(dirs[1].step, 200);
  for (const auto& d : dirs) EXPECT_OK(ValidateCheckpoint(d.path, VerifyMode::kChecksums));
  AuditReport audit;
  ASSERT_OK(AuditRun(run, AuditOptions{}, &audit));
  EXPECT_TRUE(audit.healthy()) << AuditReportJson(audit).dump(2);
  ExpectResumesBitExact(run, Reference());
}

// Two different signals, as two of the same may merge into one while pending.
TEST_F(Preemption, ASecondSignalExitsAtOnce) {
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  const Stopped s = TrainAndSignal(run, 250, {SIGTERM, SIGINT});
  EXPECT_TRUE(s.exit_code == 143 || s.exit_code == 130) << s.exit_code << ": " << s.err;
  EXPECT_EQ(s.err.find("stopped by SIGTERM after step"), std::string::npos) << s.err;  // no graceful stop
  std::vector<CheckpointDir> dirs;
  ASSERT_OK(ListCheckpointDirs(run, &dirs));
  ASSERT_FALSE(dirs.empty());
  EXPECT_EQ(dirs.back().step, 200);  // the last scheduled save; nothing after step 250
  ExpectResumesBitExact(run, Reference());
}

TEST_F(Preemption, StagingLeftoversAreRemovedAtTheNextStartOnlyUnderTheLock) {
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  ASSERT_EQ(TrainAndSignal(run, 210, {SIGTERM}).exit_code, 143);
  const std::string leftover = run + "/" + kStagingPrefix + "200-999999";
  test::WriteAll(run + "/probe", "");
  ASSERT_EQ(::mkdir(leftover.c_str(), 0755), 0);
  {
    std::unique_ptr<RunLock> lock;  // a live writer: its staging directory must survive
    ASSERT_OK(RunLock::Acquire(run, "a live writer", &lock));
    EXPECT_EQ(test::RunCommand(kBin + " train --output_dir " + run + kRun + " --resume").code, 2);
    EXPECT_TRUE(test::FileExists(leftover));
  }
  const auto o = test::RunCommand(kBin + " train --output_dir " + run + kRun + " --resume --json");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_FALSE(test::FileExists(leftover));
  EXPECT_NE(o.out.find("removed " + leftover), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("\"removed_leftovers\": [\n    \".staging-checkpoint-200-999999\""), std::string::npos) << o.out;
}

}  // namespace
}  // namespace lockstep
