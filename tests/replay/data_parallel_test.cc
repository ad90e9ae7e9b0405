// Data-parallel training (issue 13) on the CI machine: 2 ranks of Gloo on loopback,
// started by `lockstep train --nproc_per_node 2`. Identical jobs are bit-identical; a
// 2-rank job equals one process with twice the batch up to the all-reduce's summation
// order; a stopped or preempted job resumes bit-exactly; a missing rank file and a changed
// world size are refused; a killed rank brings the job down at once, named.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "formats/checkpoint.h"
#include "formats/step_log.h"
#include "inspect/audit.h"
#include "process/child_process.h"
#include "tests/run_helpers.h"
#include "tests/same_run.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

const std::string kBin = LOCKSTEP_BIN;
// 64 samples, batch 4 on each of 2 ranks: 8 updates per epoch, 2 epochs.
const std::string kJob =
    " --quiet --model gpt --train_samples 64 --eval_samples 16 --per_device_train_batch_size 4"
    " --num_train_epochs 2 --save_steps 5 --logging_steps 1";

test::CommandOutput Train(const std::string& dir, const std::string& extra) {
  return test::RunCommand(kBin + " train --output_dir " + dir + kJob + extra);
}

// A build whose LibTorch ships no Gloo headers (the PyPI wheel's: trainer/CMakeLists.txt)
// runs no CPU job of several ranks. There each test checks, instead of its job, that the
// job is refused as bad usage with the reason, and leaves no run directory behind.
void ExpectRefusedWithoutGloo() {
  test::ScratchDir dir;
  const auto o = Train(dir.Join("run"), " --nproc_per_node 2");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("has Gloo built in but no headers for it"), std::string::npos) << o.out;
  EXPECT_FALSE(fs::exists(dir.Join("run/steps.jsonl.zst")));
}

#define LOCKSTEP_NEEDS_CPU_DATA_PARALLEL() \
  if (!LOCKSTEP_CPU_DATA_PARALLEL) {       \
    ExpectRefusedWithoutGloo();            \
    return;                                \
  }

std::vector<float> Floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

TEST(DataParallel, TwoIdenticalTwoRankJobsAreBitIdentical) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  for (const char* name : {"a", "b"}) {
    const auto o = Train(dir.Join(name), " --nproc_per_node 2");
    ASSERT_EQ(o.code, 0) << o.out;
  }
  EXPECT_TRUE(test::SameRun(dir.Join("a"), dir.Join("b")));
  const StepLogContents log = test::Log(dir.Join("a"));
  EXPECT_EQ(log.header["distributed"]["world_size"], 2);
  EXPECT_EQ(log.header["distributed"]["backend"], "gloo");
  EXPECT_EQ(log.header["training_args"]["world_size"], 2);
  ASSERT_EQ(log.records.size(), 16u);
  // Rank 0 records rank 1's sample ids and generator digest too: global batches 0 and 1.
  const nlohmann::json first = StepRecordJson(log.records[0]);
  ASSERT_EQ(first["batches_other_ranks"].size(), 1u);
  EXPECT_EQ(first["batches"][0].size(), 4u);
  EXPECT_EQ(first["batches_other_ranks"][0][0].size(), 4u);
  EXPECT_NE(first["batches"], first["batches_other_ranks"][0]);
  EXPECT_TRUE(first["rng_other_ranks"][0]["cpu"].contains("xxh3_128"));
  for (const char* f : {"rng_state_0.json", "rng_state_1.json", "model.h5", "optimizer.h5"}) {
    EXPECT_TRUE(fs::exists(dir.Join("a/checkpoint-10/") + f)) << f;
  }
  EXPECT_FALSE(fs::exists(dir.Join("a/checkpoint-10/rng_state.json")));
}

// The all-reduce adds the two ranks' gradients in another order than one process sums
// its batch, so the two runs agree to rounding, not bit for bit. AdamW turns a rounding
// difference in a tiny gradient into up to a whole lr-sized step, so the weights are held
// to 1% of the largest distance AdamW can move one in 16 steps (lr x 16 = 8e-4): within
// 8e-6 absolute (measured: 1.2e-7). The losses agree within 1e-5.
TEST(DataParallel, TwoRanksEqualOneProcessWithTwiceTheBatch) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  const std::string no_dropout = " --dropout 0 --save_strategy epoch";
  ASSERT_EQ(Train(dir.Join("two"), " --nproc_per_node 2" + no_dropout).code, 0);
  const auto one = Train(dir.Join("one"), " --per_device_train_batch_size 8" + no_dropout);
  ASSERT_EQ(one.code, 0) << one.out;
  const auto two_log = test::Log(dir.Join("two")), one_log = test::Log(dir.Join("one"));
  ASSERT_EQ(two_log.records.size(), one_log.records.size());
  for (size_t i = 0; i < one_log.records.size(); ++i) {
    // Rank 0 and rank 1 together train on the one process's batch.
    auto together = StepRecordJson(two_log.records[i])["batches"][0].get<std::vector<int64_t>>();
    const auto other = StepRecordJson(two_log.records[i])["batches_other_ranks"][0][0].get<std::vector<int64_t>>();
    together.insert(together.end(), other.begin(), other.end());
    EXPECT_EQ(together, StepRecordJson(one_log.records[i])["batches"][0].get<std::vector<int64_t>>())
        << "step " << i + 1;
    EXPECT_NEAR(StepRecordJson(two_log.records[i])["loss"].get<double>(),
                StepRecordJson(one_log.records[i])["loss"].get<double>(), 1e-5);
  }
  const auto a = test::Tensors(dir.Join("two/checkpoint-16/model.h5")),
             b = test::Tensors(dir.Join("one/checkpoint-16/model.h5"));
  ASSERT_EQ(a.size(), b.size());
  double worst = 0, moved = 0;
  const auto initial = test::Tensors(dir.Join("two/checkpoint-8/model.h5"));
  for (const auto& [name, bytes] : a) {
    const auto x = Floats(bytes), y = Floats(b.at(name)), x8 = Floats(initial.at(name));
    ASSERT_EQ(x.size(), y.size()) << name;
    for (size_t i = 0; i < x.size(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(x[i] - y[i])));
      moved = std::max(moved, static_cast<double>(std::fabs(x[i] - x8[i])));
    }
  }
  EXPECT_GT(moved, 1e-4);  // the weights did move: the comparison can fail
  EXPECT_LT(worst, 0.01 * 5e-5 * 16);
  char measured[32];
  std::snprintf(measured, sizeof(measured), "%.3g", worst);
  RecordProperty("worst_weight_difference", measured);
}

TEST(DataParallel, AStoppedJobResumesBitExact) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  ASSERT_EQ(Train(dir.Join("reference"), " --nproc_per_node 2").code, 0);
  const auto stopped = Train(dir.Join("run"), " --nproc_per_node 2 --stop-after-step 7");
  ASSERT_EQ(stopped.code, 0) << stopped.out;
  const auto resumed = Train(dir.Join("run"), " --nproc_per_node 2 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_TRUE(test::SameRun(dir.Join("reference"), dir.Join("run")));
}

// lockstep diff of 1 process against 2 ranks: the world size is a settings difference, and
// the runs part at step 1 over the data (rank 1's batches), not over the plan.
TEST(DataParallel, DiffAcrossWorldSizesNamesTheSettingAndTheDataAtStepOne) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  ASSERT_EQ(Train(dir.Join("one"), "").code, 0);
  ASSERT_EQ(Train(dir.Join("two"), " --nproc_per_node 2").code, 0);
  const auto o = test::RunCommand(kBin + " diff " + dir.Join("one") + " " + dir.Join("two") + " --json");
  EXPECT_EQ(o.code, 1) << o.out;
  const nlohmann::json report = nlohmann::json::parse(o.out);
  EXPECT_EQ(report["first_divergence"]["step"], 1);
  EXPECT_EQ(report["first_divergence"]["cause"], "data");
  EXPECT_EQ(report["first_divergence"]["field"], "batches_other_ranks");
  bool world_listed = false;
  for (const auto& s : report["settings_differences"]) world_listed |= s["name"] == "training_args.world_size";
  EXPECT_TRUE(world_listed) << report["settings_differences"].dump();
}

// A replay of a 2-rank run is a 2-rank job: each rank trains on the batches and generator
// states it logged, and rank 0 judges every rank's recomputed record against the log.
TEST(DataParallel, AReplayRunsAsAJobOfTheRunsWorldSize) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  ASSERT_EQ(Train(run, " --nproc_per_node 2").code, 0);
  auto o = test::RunCommand(kBin + " replay " + run + " --from checkpoint-5 --steps 6 --json");
  ASSERT_EQ(o.code, 0) << o.out;
  const nlohmann::json report = nlohmann::json::parse(o.out);
  EXPECT_EQ(report["passed"], true) << report.dump(2);
  EXPECT_EQ(report["steps_replayed"], 6);
  EXPECT_EQ(report["digest_checks"], 6);
  o = test::RunCommand(kBin + " replay " + run + " --from checkpoint-5 --nproc_per_node 1");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("is from a job of 2 rank(s)"), std::string::npos) << o.out;
}

TEST(DataParallel, AChangedWorldSizeIsRefusedUnlessOverridden) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  ASSERT_EQ(Train(dir.Join("run"), " --nproc_per_node 2 --stop-after-step 5").code, 0);
  auto o = Train(dir.Join("run"), " --resume");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("world_size: checkpoint 2, now 1"), std::string::npos) << o.out;
  o = Train(dir.Join("run"), " --resume --resume-override");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("no rng_state.json (another world size)"), std::string::npos) << o.out;
  EXPECT_TRUE(StepRecordJson(test::Log(dir.Join("run")).records.back()).value("resume_override", false));
  // The run's audit says so: a different run, though its files are sound.
  const auto inspect = test::RunCommand(kBin + " inspect " + dir.Join("run"));
  EXPECT_NE(inspect.out.find("steps 6..32 are marked resume_override"), std::string::npos) << inspect.out;
  o = Train(dir.Join("solo"), " --world_size 2");  // without a launcher
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--world_size 2, but the launcher started 1"), std::string::npos) << o.out;
}

TEST(DataParallel, AMissingRankFileIsCaughtByInspectAndRefusedByResume) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  ASSERT_EQ(Train(run, " --nproc_per_node 2 --stop-after-step 10").code, 0);
  fs::remove(run + "/checkpoint-10/rng_state_1.json");
  AuditOptions verify;
  verify.verify = true;
  AuditReport audit;
  ASSERT_OK(AuditRun(run, verify, &audit));
  EXPECT_FALSE(audit.healthy());
  EXPECT_NE(AuditReportJson(audit).dump().find("rng_state_1.json: listed in the manifest but missing"),
            std::string::npos);
  const auto o = Train(run, " --nproc_per_node 2 --resume " + run + "/checkpoint-10");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("[rank 0] lockstep train: " + run + "/checkpoint-10/rng_state_1.json"), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("the job failed: rank 0"), std::string::npos) << o.out;
}

// A SIGKILLed rank: its peer's next collective fails at once (no hang), the launcher names
// the killed rank, and the job's exit status is the kill's.
TEST(DataParallel, AKilledRankBringsTheJobDownNamingIt) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  std::unique_ptr<ChildProcess> job;
  ASSERT_OK(ChildProcess::Start({kBin, "train", "--nproc_per_node", "2", "--output_dir", run, "--quiet", "--max_steps",
                                 "1000000", "--save_strategy", "no", "--ddp_timeout", "60", "--event-fd", "3"},
                                dir.Join("out"), dir.Join("err"), &job));
  std::string name;
  int64_t step = 0;
  while (job->NextEvent(60, &name, &step) == ChildProcess::Next::kEvent && step < 20) {
  }
  // Rank 1 is the launcher's second child: the one without the event pipe.
  pid_t rank1 = -1;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string stat = test::ReadAll(e.path().string() + "/stat");
    const std::string environ = test::ReadAll(e.path().string() + "/environ");
    if (stat.find(") S " + std::to_string(job->pid()) + " ") == std::string::npos &&
        stat.find(") R " + std::to_string(job->pid()) + " ") == std::string::npos)
      continue;
    if (environ.find(std::string("RANK=1\0", 7)) != std::string::npos) rank1 = std::stoi(e.path().filename().string());
  }
  ASSERT_GT(rank1, 0);
  const auto killed_at = std::chrono::steady_clock::now();
  ::kill(rank1, SIGKILL);
  while (job->NextEvent(60, &name, &step) == ChildProcess::Next::kEvent) {
  }
  int code = 0, sig = 0;
  ASSERT_OK(job->Wait(&code, &sig));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count(), 30.0);
  EXPECT_EQ(code, 137);
  const std::string err = test::ReadAll(dir.Join("err"));
  EXPECT_NE(err.find("the job failed: rank 1 (pid " + std::to_string(rank1) + ") was killed by signal 9"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("a peer rank died"), std::string::npos) << err;  // rank 0's collective, not a hang
}

// A SIGTERM to the launcher reaches every rank; they agree on it after the same step, each
// writes its generator state into the one checkpoint there, and the job resumes bit-exact.
TEST(DataParallel, ASigtermCheckpointsEveryRankAtTheSameStepAndResumesBitExact) {
  LOCKSTEP_NEEDS_CPU_DATA_PARALLEL();
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  const std::string job = " --quiet --max_steps 200 --save_steps 1000 --train_samples 2048";
  ASSERT_EQ(test::RunCommand(kBin + " train --nproc_per_node 2 --output_dir " + dir.Join("reference") + job).code, 0);
  std::unique_ptr<ChildProcess> child;
  std::vector<std::string> argv = {kBin, "train", "--nproc_per_node", "2", "--output_dir", run, "--event-fd", "3"};
  for (const char* a : {"--quiet", "--max_steps", "200", "--save_steps", "1000", "--train_samples", "2048"})
    argv.push_back(a);
  ASSERT_OK(ChildProcess::Start(argv, dir.Join("out"), dir.Join("err"), &child));
  std::string name;
  int64_t step = 0;
  while (child->NextEvent(60, &name, &step) == ChildProcess::Next::kEvent) {
    if (name == "step" && step == 50) ::kill(child->pid(), SIGTERM);
  }
  int code = 0, sig = 0;
  ASSERT_OK(child->Wait(&code, &sig));
  const std::string err = test::ReadAll(dir.Join("err"));
  ASSERT_EQ(code, 143) << err;
  std::vector<CheckpointDir> dirs;
  ASSERT_OK(ListCheckpointDirs(run, &dirs));
  ASSERT_EQ(dirs.size(), 1u) << err;
  EXPECT_GE(dirs[0].step, 50);
  EXPECT_OK(ValidateCheckpoint(dirs[0].path, VerifyMode::kChecksums));
  for (const char* f : {"rng_state_0.json", "rng_state_1.json"}) EXPECT_TRUE(fs::exists(dirs[0].path + "/" + f)) << f;
  const auto resumed = test::RunCommand(kBin + " train --nproc_per_node 2 --resume --output_dir " + run + job);
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_TRUE(test::SameRun(dir.Join("reference"), run));
}

}  // namespace
}  // namespace lockstep
