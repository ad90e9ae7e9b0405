// The fault-injection walk (issue 10), after leveldb's FaultInjectionTestEnv: for every
// disk-changing call a run makes (each create, write, fsync, truncate, rename, mkdir and
// remove of its lock, step-log frames, checkpoint saves and rotations), a run in which
// exactly that call fails, with ENOSPC or EIO. After each failure:
//   - the run returns a clean error carrying the system's text, and nothing crashes;
//   - the audit finds no committed checkpoint corrupt;
//   - resuming (or starting afresh when nothing was committed, as a user would) finishes,
//     and the finished run is bit-exact with the run that never failed.
// The same walk runs over a resume. The coverage is printed and recorded as properties.
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "inspect/audit.h"
#include "tests/fault/fault_injection.h"
#include "tests/run_helpers.h"
#include "tests/same_run.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

// 16 steps, a save every 4, two kept: every run saves four times and rotates twice.
TrainingArgs WalkArgs(const std::string& out) {
  TrainingArgs a = test::Tiny("mlp", out);
  a.save_steps = 4;
  a.save_total_limit = 2;
  return a;
}

struct WalkTally {
  int64_t points = 0;
  std::map<std::string, int64_t> by_op;  // "write" -> failure points
  int64_t unresumable = 0;
};

// The run of `dir` after a failure: nothing committed may be corrupt, and the run must
// finish bit-exact with `reference`. Returns false (having reported why) otherwise.
bool RecoverAndCompare(const std::string& dir, const std::string& reference, const std::string& what) {
  // Where the run failed before writing anything (its mkdir, or its lock file's creation),
  // the directory is missing or empty: there is no run to audit (the audit would rightly
  // call it "not a run directory"). Anything else must audit.
  AuditReport audit;
  std::error_code ec;
  const bool empty = !fs::exists(dir, ec) || fs::is_empty(dir, ec);
  const Status audited = empty ? Status::Ok() : AuditRun(dir, AuditOptions{}, &audit);
  EXPECT_TRUE(audited.ok()) << what << ": " << audited.ToString();
  for (const auto& c : audit.checkpoints) {
    EXPECT_NE(c.status, "corrupt") << what << ": " << c.name << ": " << (c.problems.empty() ? "" : c.problems[0]);
  }
  CheckpointDir latest;
  std::vector<SkippedCheckpoint> skipped;
  TrainingArgs args = WalkArgs(dir);
  TrainOptions options = test::Quiet();
  if (FindLatestValidCheckpoint(dir, VerifyMode::kChecksums, &latest, &skipped).ok()) {
    options.resume_from = "";
  } else {
    args.overwrite_output_dir = true;
  }
  TrainResult result;
  const Status resumed = RunTraining(args, options, &result);
  EXPECT_TRUE(resumed.ok()) << what << ": the recovery failed: " << resumed.ToString();
  if (!resumed.ok()) return false;
  const ::testing::AssertionResult same = test::SameRun(reference, dir);
  EXPECT_TRUE(same) << what;
  return static_cast<bool>(same);
}

// Fails each call of `run` in turn (in a fresh copy of `start`, or an empty directory).
void Walk(const std::string& scratch, const std::string& start, bool resume, const std::string& reference,
          WalkTally* tally) {
  // How many calls the unfaulted run makes.
  const std::string probe_dir = scratch + "/probe";
  if (!start.empty()) ASSERT_OK(CopyTree(start, probe_dir));
  test::FaultInjector counter;
  {
    test::ScopedIoHook hook(&counter);
    TrainOptions options = test::Quiet();
    if (resume) options.resume_from = "";
    TrainResult result;
    ASSERT_OK(RunTraining(WalkArgs(probe_dir), options, &result));
  }
  ASSERT_GT(counter.calls(), 20);
  for (int64_t n = 1; n <= counter.calls(); ++n) {
    const std::string dir = scratch + "/fail-" + std::to_string(n);
    if (!start.empty()) ASSERT_OK(CopyTree(start, dir));
    const int error = n % 2 == 0 ? EIO : ENOSPC;
    test::FaultInjector fault(n, error);
    Status st;
    {
      test::ScopedIoHook hook(&fault);
      TrainOptions options = test::Quiet();
      if (resume) options.resume_from = "";
      TrainResult result;
      st = RunTraining(WalkArgs(dir), options, &result);
    }
    const std::string what = "call " + std::to_string(n) + " (" + fault.failed_call() + ")";
    ASSERT_TRUE(fault.fired()) << what;
    ++tally->points;
    ++tally->by_op[fault.failed_call().substr(0, fault.failed_call().find(' '))];
    EXPECT_FALSE(st.ok()) << what << " failed, yet the run reported success";
    EXPECT_NE(st.message().find(std::strerror(error)), std::string::npos) << what << ": " << st.ToString();
    if (!RecoverAndCompare(dir, reference, what)) ++tally->unresumable;
    ASSERT_OK(RemoveTree(dir));
  }
}

void Report(const std::string& name, const WalkTally& t) {
  std::string ops;
  for (const auto& [op, count] : t.by_op) ops += (ops.empty() ? "" : ", ") + op + " " + std::to_string(count);
  // In process: a crash would abort this binary, so reaching here means none.
  std::printf("fault walk (%s): %lld failure points (%s), 0 crashes, %lld runs left unresumable\n", name.c_str(),
              static_cast<long long>(t.points), ops.c_str(), static_cast<long long>(t.unresumable));
  ::testing::Test::RecordProperty(name + "_failure_points", static_cast<int>(t.points));
}

TEST(FaultWalk, EveryCallOfAFreshRunFailsCleanlyAndTheRunStillFinishesBitExact) {
  test::ScratchDir dir;
  TrainResult reference;
  ASSERT_OK(RunTraining(WalkArgs(dir.Join("reference")), test::Quiet(), &reference));
  WalkTally tally;
  Walk(dir.path(), "", /*resume=*/false, dir.Join("reference"), &tally);
  Report("fresh run", tally);
  EXPECT_EQ(tally.unresumable, 0);
  EXPECT_GE(tally.by_op["rename"], 4);  // every save's commit and every rotation's delete
  EXPECT_GE(tally.by_op["remove"], 2);
}

TEST(FaultWalk, EveryCallOfAResumeFailsCleanlyAndTheRunStillFinishesBitExact) {
  test::ScratchDir dir;
  TrainResult reference;
  ASSERT_OK(RunTraining(WalkArgs(dir.Join("reference")), test::Quiet(), &reference));
  TrainOptions stop = test::Quiet();
  stop.stop_after_step = 6;  // checkpoints 4 and 6 (the stop's own)
  TrainResult stopped;
  ASSERT_OK(RunTraining(WalkArgs(dir.Join("stopped")), stop, &stopped));
  WalkTally tally;
  Walk(dir.path(), dir.Join("stopped"), /*resume=*/true, dir.Join("reference"), &tally);
  Report("resume", tally);
  EXPECT_EQ(tally.unresumable, 0);
  EXPECT_GE(tally.by_op["truncate"], 1);  // the step log is cut back to the checkpoint
}

}  // namespace
}  // namespace lockstep
