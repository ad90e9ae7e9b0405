// Users' own data-parallel jobs under torchrun (issue 35), 2 ranks of Gloo from the project's
// .venv: the Recorder and the HF callback log every rank's samples, so the coverage audit sees
// the whole job, and a resume at 1 rank whose loader restarts its epoch is caught as repeated
// samples with the steps named. verify-resume --cmd interrupts the whole process tree of
// torchrun: no worker of an interrupted run is alive when its resume starts (the script
// checks, and so does the test, by pid).
#include <signal.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "formats/step_log.h"
#include "formats/step_record.h"
#include "tests/python_env.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

using nlohmann::json;
using test::kPython;
using test::PythonMissing;

const std::string kBin = LOCKSTEP_BIN;

// torchrun on one machine, `world` ranks: the script's command line.
std::string Torchrun(int world, const std::string& script) {
  return kPython + " -m torch.distributed.run --standalone --nproc_per_node " + std::to_string(world) + " " +
         LOCKSTEP_SOURCE_DIR + "/tests/python/" + script;
}

StepLogContents ReadLog(const std::string& run) {
  StepLogContents log;
  EXPECT_OK(ReadStepLog(run + "/steps.jsonl.zst", &log));
  return log;
}

json Inspect(const std::string& run, int* code) {
  const auto o = test::RunCommand(kBin + " inspect --json " + run);
  *code = o.code;
  return json::parse(o.out);
}

TEST(DdpRecorder, EveryRanksSamplesAreLoggedAndARestartedEpochAtOneRankIsCaught) {
  const std::string missing = PythonMissing("torch, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  auto o = test::RunCommand(Torchrun(2, "ddp_loop.py " + run + " 12"));
  ASSERT_EQ(o.code, 0) << o.out;
  StepLogContents log = ReadLog(run);
  ASSERT_EQ(log.records.size(), 12u);
  EXPECT_EQ(log.header["distributed"]["world_size"], 2);
  for (const auto& r : log.records) {
    ASSERT_EQ(r.batches_other_ranks.size(), 1u) << "step " << r.step;
    ASSERT_EQ(r.rng_other_ranks.size(), 1u) << "step " << r.step;
  }
  int code = 0;
  json report = Inspect(run, &code);
  EXPECT_EQ(code, 0) << report.dump(2);
  const json& epoch0 = report["findings"]["coverage"]["epochs"][0];
  EXPECT_EQ(epoch0["drawn"], 64) << epoch0.dump();  // 8 steps of 4 samples on each of 2 ranks
  EXPECT_EQ(epoch0["distinct"], 64) << epoch0.dump();
  EXPECT_EQ(epoch0["repeated"], 0) << epoch0.dump();

  // Stopped at step 4 by 2 ranks, resumed by 1 whose loader starts epoch 0 over.
  const std::string restarted = dir.Join("restarted");
  ASSERT_EQ(test::RunCommand(Torchrun(2, "ddp_loop.py " + restarted + " 4")).code, 0);
  o = test::RunCommand(
      Torchrun(1, "ddp_loop.py " + restarted + " 12 --resume " + restarted + "/checkpoint-4 --restart-epoch"));
  ASSERT_EQ(o.code, 0) << o.out;
  log = ReadLog(restarted);
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].record[event_key::kWorldSize][event_key::kWorldSizeFrom], 2);
  EXPECT_EQ(log.events[0].record[event_key::kWorldSize][event_key::kWorldSizeTo], 1);
  report = Inspect(restarted, &code);
  EXPECT_EQ(code, 1) << report.dump(2);
  bool named = false;
  for (const auto& p : report["problems"]) {
    named |= p.get<std::string>().find("sample ids drawn more than once, from step 5") != std::string::npos;
  }
  EXPECT_TRUE(named) << report["problems"].dump(2);
}

TEST(HfCallback, UnderTorchrunEveryRanksSamplesAreLogged) {
  const std::string missing = PythonMissing("torch, transformers, accelerate, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  // 50 samples, batch 4 per rank, accumulation 3: each rank's 7 batches an epoch.
  const auto o = test::RunCommand(Torchrun(2, "hf_trainer.py --output_dir " + run + " --max_steps 4"));
  ASSERT_EQ(o.code, 0) << o.out;
  const StepLogContents log = ReadLog(run);
  ASSERT_EQ(log.records.size(), 4u);
  EXPECT_EQ(log.header["distributed"]["world_size"], 2);
  for (const auto& r : log.records) {
    ASSERT_EQ(r.batches_other_ranks.size(), 1u) << "step " << r.step;
    EXPECT_FALSE(r.batches_other_ranks[0].empty()) << "step " << r.step;
    EXPECT_NE(r.batches_other_ranks[0], r.batches) << "step " << r.step;  // the ranks draw their own shards
  }
  int code = 0;
  json report = Inspect(run, &code);
  const json& epoch0 = report["findings"]["coverage"]["epochs"][0];
  // Every rank's batches: 2 x 7 batches of 4 cover the 50 samples (accelerate pads the last round).
  EXPECT_EQ(epoch0["distinct"], 50) << epoch0.dump();

  // Resumed by one process: the Trainer looks for rng_state.pth, so neither rank's generator
  // file is restored, and the audit (and diff) names both.
  const auto resumed = test::RunCommand(test::PythonScript("hf_trainer.py") + " --output_dir " + run +
                                        " --max_steps 6 --resume_from_checkpoint " + run + "/checkpoint-3");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  report = Inspect(run, &code);
  const json& unrestored = report["findings"]["unrestored_state"];
  ASSERT_EQ(unrestored.size(), 1u) << report.dump(2);
  EXPECT_EQ(unrestored[0]["checkpoint"], "checkpoint-3");
  EXPECT_EQ(unrestored[0]["from"], 2);
  EXPECT_EQ(unrestored[0]["to"], 1);
  EXPECT_EQ(unrestored[0]["files"], json::array({"rng_state_0.pth", "rng_state_1.pth"})) << unrestored.dump();
  EXPECT_EQ(unrestored[0]["alike"], false);
}

// torchrun starts its workers as children; a SIGKILL of torchrun alone leaves them training
// into the run while its resume starts. Every interruption reaches the process group; the
// script exits 3 when a process of an earlier start of its run is still alive, which
// verify-resume would report as a failed resume.
TEST(VerifyCmd, ATorchrunJobIsInterruptedWholeAndNoWorkerOutlivesIt) {
  const std::string missing = PythonMissing("torch, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string cmd = Torchrun(2, "ddp_loop.py {output_dir} 24 --step-sleep 0.05");
  const auto o = test::RunCommand(kBin + " verify-resume --quiet --json --kill-random 2 --cmd '" + cmd +
                                  "' --resume-arg '--resume {checkpoint}' --output_dir " + dir.Join("v"));
  ASSERT_EQ(o.code, 0) << o.out;
  const json report = json::parse(o.out);
  EXPECT_EQ(report["bit_exact"], true) << report.dump(2);
  ASSERT_EQ(report["variants"].size(), 3u);
  int pids = 0;
  for (const auto& v : report["variants"]) {
    for (const auto& f : fs::directory_iterator(dir.Join("v/" + v["name"].get<std::string>() + "/pids"))) {
      const pid_t pid = static_cast<pid_t>(std::stol(f.path().filename().string()));
      EXPECT_NE(::kill(pid, 0), 0) << "pid " << pid << " of " << v["name"] << " is still alive";
      ++pids;
    }
  }
  EXPECT_GE(pids, 12);  // each variant: 2 workers interrupted, 2 resumed (torchrun's included or not)
}

// {world} takes the launcher's size: a variant stopped at 2 ranks and resumed at 1. An ordinary
// DDP loop is not world-invariant, so its verdict is DIVERGED and names where it parts.
TEST(VerifyCmd, WorldTakesTheLaunchersSize) {
  const std::string missing = PythonMissing("torch, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string cmd = kPython + " -m torch.distributed.run --standalone --nproc_per_node {world} " +
                          LOCKSTEP_SOURCE_DIR + "/tests/python/ddp_loop.py {output_dir} 16 --step-sleep 0.05";
  auto o = test::RunCommand(kBin + " verify-resume --quiet --json --kill-random 0 --world 2:1 --cmd '" + cmd +
                            "' --resume-arg '--resume {checkpoint}' --output_dir " + dir.Join("v"));
  ASSERT_EQ(o.code, 1) << o.out;
  const json report = json::parse(o.out);
  ASSERT_EQ(report["variants"].size(), 2u);
  EXPECT_EQ(report["variants"][0]["bit_exact"], true) << report.dump(2);  // sigterm, at 2 ranks
  EXPECT_EQ(report["variants"][1]["name"], "world-2-to-1");
  EXPECT_NE(report["variants"][1]["how"].get<std::string>().find("resumed at world size 1"), std::string::npos);
  EXPECT_FALSE(report["variants"][1]["first_divergence"].is_null()) << report.dump(2);
  o = test::RunCommand(kBin + " verify-resume --world 2:1 --cmd 'true {output_dir}' --resume-arg 'x {checkpoint}' " +
                       "--output_dir " + dir.Join("usage"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("put {world} in --cmd"), std::string::npos) << o.out;
}

}  // namespace
}  // namespace lockstep
