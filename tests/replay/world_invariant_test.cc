// World-size-invariant data parallelism (--world_invariant, issue 35) on Gloo: the same run at
// 1, 2 and 3 ranks, dropout on; a checkpoint resumed at another world size is the
// uninterrupted run, step log and weights; verify-resume --world proves it, and shows an
// ordinary run parting; every refusal names why.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "formats/checkpoint.h"
#include "formats/checksum.h"
#include "formats/file_names.h"
#include "formats/json_file.h"
#include "formats/step_log.h"
#include "formats/step_record.h"
#include "tests/run_helpers.h"
#include "tests/same_run.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

const std::string kBin = LOCKSTEP_BIN;
// 36 samples, a global micro-batch of 6 (6 x 1, 3 x 2, 2 x 3 ranks), 2 micro-batches a step:
// 3 updates per epoch, 8 steps; gpt's dropout (0.1 by default) in every block. One thread
// everywhere: a rank of a job defaults to 1, one process to a thread per core, and the
// thread count decides the bits.
const std::string kRun =
    " --quiet --model gpt --n_layer 1 --n_embd 32 --block_size 8 --train_samples 36 --eval_samples 8"
    " --gradient_accumulation_steps 2 --max_steps 8 --save_steps 3 --logging_steps 1 --num_threads 1";

std::string Batch(int64_t world) { return " --per_device_train_batch_size " + std::to_string(6 / world); }
std::string Ranks(int64_t world) { return world > 1 ? " --nproc_per_node " + std::to_string(world) : ""; }

test::CommandOutput Train(const std::string& dir, int64_t world, const std::string& extra = "") {
  return test::RunCommand(kBin + " train --output_dir " + dir + kRun + " --world_invariant true" + Batch(world) +
                          Ranks(world) + extra);
}

json DiffJson(const std::string& a, const std::string& b, int* code) {
  const auto o = test::RunCommand(kBin + " diff " + a + " " + b + " --json");
  *code = o.code;
  return json::parse(o.out);
}

// A build whose LibTorch ships no Gloo headers (the PyPI wheel's) runs no CPU job of several
// ranks: there each test checks that the invariant job is refused with the reason instead.
void ExpectRefusedWithoutGloo() {
  test::ScratchDir dir;
  const auto o = Train(dir.Join("run"), 2);
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("has Gloo built in but no headers for it"), std::string::npos) << o.out;
}

#define LOCKSTEP_NEEDS_GLOO()        \
  if (!LOCKSTEP_CPU_DATA_PARALLEL) { \
    ExpectRefusedWithoutGloo();      \
    return;                          \
  }

TEST(WorldInvariant, OneTwoAndThreeRanksTrainTheSameBits) {
  LOCKSTEP_NEEDS_GLOO();
  test::ScratchDir dir;
  for (int64_t world : {1, 2, 3}) {
    const auto o = Train(dir.Join("w" + std::to_string(world)), world);
    ASSERT_EQ(o.code, 0) << o.out;
  }
  for (const char* other : {"w2", "w3"}) {
    int code = 0;
    const json d = DiffJson(dir.Join("w1"), dir.Join(other), &code);
    EXPECT_EQ(code, 0) << d.dump(2);
    EXPECT_EQ(d["steps_matching"], 8) << d.dump(2);
    for (const auto& c : d["checkpoints"]) {
      EXPECT_EQ(c["identical"], true) << c.dump();
      EXPECT_GT(c["tensors_compared"].get<int64_t>(), 0) << c.dump();
    }
  }
  // The units' dropout is drawn: without it the same run has other losses.
  ASSERT_EQ(Train(dir.Join("nodrop"), 1, " --dropout 0").code, 0);
  EXPECT_NE(test::Log(dir.Join("w1")).records[0].loss, test::Log(dir.Join("nodrop")).records[0].loss);
}

TEST(WorldInvariant, ACheckpointResumedAtAnotherWorldSizeIsTheUninterruptedRun) {
  LOCKSTEP_NEEDS_GLOO();
  test::ScratchDir dir;
  ASSERT_EQ(Train(dir.Join("reference"), 2).code, 0);
  for (int64_t to : {1, 3}) {
    const std::string run = dir.Join("to" + std::to_string(to));
    ASSERT_EQ(Train(run, 2, " --stop-after-step 4").code, 0);
    const auto o = Train(run, to, " --resume");
    ASSERT_EQ(o.code, 0) << o.out;
    EXPECT_TRUE(test::SameRun(dir.Join("reference"), run));
    const StepLogContents log = test::Log(run);
    ASSERT_EQ(log.events.size(), 1u);
    const json& world = log.events[0].record[event_key::kWorldSize];
    EXPECT_EQ(world[event_key::kWorldSizeFrom], 2) << log.events[0].record.dump();
    EXPECT_EQ(world[event_key::kWorldSizeTo], to);
    EXPECT_FALSE(StepRecordJson(log.records.back()).value(step_key::kResumeOverride, false));
    // Checkpoints saved by 2 ranks and by `to` are each whole: no false alarm.
    const auto inspect = test::RunCommand(kBin + " inspect " + run);
    EXPECT_EQ(inspect.code, 0) << inspect.out;
    EXPECT_NE(inspect.out.find("world size 2 -> " + std::to_string(to) + " after step 4"), std::string::npos)
        << inspect.out;
    // Resumed by 1, rank 1's file was read only to be found alike rank 0's: said so.
    const json unrestored =
        json::parse(test::RunCommand(kBin + " inspect --json " + run).out)["findings"]["unrestored_state"];
    if (to == 1) {
      ASSERT_EQ(unrestored.size(), 1u) << unrestored.dump();
      EXPECT_EQ(unrestored[0]["files"], json::array({RngStateFileName(1, 2, kRngStateJsonExt)}));
      EXPECT_EQ(unrestored[0]["alike"], true);
    } else {
      EXPECT_TRUE(unrestored.empty()) << unrestored.dump();
    }
  }
}

TEST(WorldInvariant, VerifyResumeWorldIsBitExactAndAnOrdinaryRunDivergesNamingWhy) {
  LOCKSTEP_NEEDS_GLOO();
  test::ScratchDir dir;
  const std::string flags = kRun + " --per_device_train_batch_size 3 --world 2:1 --world 2:3 --json";
  auto o =
      test::RunCommand(kBin + " verify-resume --output_dir " + dir.Join("inv") + flags + " --world_invariant true");
  ASSERT_EQ(o.code, 0) << o.out;
  json r = json::parse(o.out);
  EXPECT_EQ(r["bit_exact"], true);
  ASSERT_EQ(r["variants"].size(), 2u);
  EXPECT_EQ(r["variants"][0]["name"], "world-2-to-1");
  EXPECT_EQ(r["variants"][1]["name"], "world-2-to-3");
  for (const auto& v : r["variants"]) EXPECT_EQ(v["comparison"]["steps_matching"], 8) << v.dump(2);

  o = test::RunCommand(kBin + " verify-resume --output_dir " + dir.Join("plain") + flags);
  ASSERT_EQ(o.code, 1) << o.out;
  r = json::parse(o.out);
  EXPECT_EQ(r["bit_exact"], false);
  for (const auto& v : r["variants"]) {
    EXPECT_EQ(v["comparison"]["first_divergence"]["cause"], "data") << v.dump(2);
    EXPECT_NE(v["note"].get<std::string>().find("train with --world_invariant"), std::string::npos) << v.dump(2);
  }
}

TEST(WorldInvariant, EveryRefusalNamesWhy) {
  LOCKSTEP_NEEDS_GLOO();
  test::ScratchDir dir;
  // An ordinary job's checkpoint at another world size.
  const std::string plain = dir.Join("plain");
  ASSERT_EQ(
      test::RunCommand(kBin + " train --output_dir " + plain + kRun + Batch(2) + Ranks(2) + " --stop-after-step 3")
          .code,
      0);
  auto o = test::RunCommand(kBin + " train --output_dir " + plain + kRun + Batch(1) + " --resume");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("only a run trained with --world_invariant resumes at another world size"), std::string::npos)
      << o.out;
  // An invariant job's, without the global micro-batch kept.
  const std::string inv = dir.Join("inv");
  ASSERT_EQ(Train(inv, 2, " --stop-after-step 3").code, 0);
  o = test::RunCommand(kBin + " train --output_dir " + inv + kRun + " --world_invariant true" + Batch(2) + Ranks(3) +
                       " --resume");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("at 3 ranks pass --per_device_train_batch_size 2"), std::string::npos) << o.out;
  // verify-resume: a size that does not divide the global batch, and a pair from another size.
  o = test::RunCommand(kBin + " verify-resume --output_dir " + dir.Join("v") + kRun +
                       " --per_device_train_batch_size 3 --world 2:4");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("does not divide into 4 ranks"), std::string::npos) << o.out;
  o = test::RunCommand(kBin + " verify-resume --output_dir " + dir.Join("v") + kRun +
                       " --per_device_train_batch_size 3 --nproc_per_node 2 --world 3:1");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("every --world pair starts from that size"), std::string::npos) << o.out;
}

// The ranks of a world_invariant job save alike generator files, and a resume at another
// size restores rank 0's on every rank: a checkpoint whose files differ (re-signed, so its
// manifest vouches for them) is refused, never resumed with one rank's state for another's.
TEST(WorldInvariant, UnlikeRankGeneratorFilesAreRefusedAtAnotherWorldSize) {
  LOCKSTEP_NEEDS_GLOO();
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  ASSERT_EQ(Train(run, 2, " --stop-after-step 3").code, 0);
  const std::string ckpt = run + "/checkpoint-3", rank1 = RngStateFileName(1, 2, kRngStateJsonExt);
  json rng;
  ASSERT_OK(ReadJsonFile(ckpt + "/" + rank1, &rng));
  rng["edited"] = true;
  ASSERT_OK(WriteJsonFile(ckpt + "/" + rank1, rng));
  std::ifstream in(ckpt + "/" + rank1, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json manifest;
  ASSERT_OK(ReadJsonFile(ckpt + "/" + kManifestFile, &manifest));
  for (auto& f : manifest["files"]) {
    if (f["path"] != rank1) continue;
    f["size"] = bytes.size();
    f["xxh3_128"] = Xxh3Hex(bytes.data(), bytes.size());
  }
  ASSERT_OK(WriteJsonFile(ckpt + "/" + kManifestFile, manifest));
  const auto o = Train(run, 1, " --resume");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find(rank1 + " differs from " + RngStateFileName(0, 2, kRngStateJsonExt)), std::string::npos)
      << o.out;
}

}  // namespace
}  // namespace lockstep
