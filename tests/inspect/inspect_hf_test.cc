// inspect on Hugging Face output: the HF fixture (real transformers 5.17 output) audited
// as HF left it and shown without unpickling, safetensors decoding (bf16, fp16), sharded
// weights, per-rank RNG files, and damage. No LibTorch here.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "formats/file_util.h"
#include "formats/json_file.h"
#include "inspect/audit.h"
#include "inspect/show.h"
#include "tests/inspect_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
using namespace test;  // the helpers: Train, Audit, Find, HfRun, WriteSafetensors, ...

TEST(Safetensors, ValidFileStreamsAndDecodesHalfPrecision) {
  test::ScratchDir dir;
  // bf16 1.5 = 0x3fc0, f16 -2.0 = 0xc000, f32 [1, NaN].
  std::string data = std::string("\xc0\x3f", 2) + std::string("\x00\xc0", 2);
  const float f[2] = {1.0f, NAN};
  data.append(reinterpret_cast<const char*>(f), 8);
  WriteSafetensors(
      dir.Join("m.safetensors"),
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},)"
      R"("b":{"dtype":"F16","shape":[1],"data_offsets":[2,4]},"c":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      data);
  json r;
  ASSERT_TRUE(ShowPath(dir.Join("m.safetensors"), ShowOptions(), &r).ok());
  ASSERT_EQ(r["tensors"].size(), 3u);
  EXPECT_EQ(r["tensors"][0]["dtype"], "bfloat16");
  EXPECT_EQ(r["tensors"][0]["min"], 1.5);
  EXPECT_EQ(r["tensors"][1]["dtype"], "float16");
  EXPECT_EQ(r["tensors"][1]["max"], -2.0);
  EXPECT_EQ(r["tensors"][2]["nan"], 1);
  EXPECT_EQ(r["tensors"][2]["mean"], 1.0);
  EXPECT_TRUE(r["problems"].empty()) << r["problems"];
}

TEST(HfFixture, RngStateIsReadWithoutUnpickling) {
  json r;
  ASSERT_TRUE(ShowPath(HfRun() + "/checkpoint-16", ShowOptions(), &r).ok());
  ASSERT_EQ(r["rng"].size(), 2u);
  EXPECT_EQ(r["rng"][0]["generator"], "cpu");
  EXPECT_EQ(r["rng"][0]["bytes"], 5056);
  EXPECT_EQ(r["rng"][0]["initial_seed"], 7);  // the fixture's seed
  EXPECT_EQ(r["rng"][1]["generator"], "cuda");
  EXPECT_EQ(r["rng"][1]["bytes"], 16);
  EXPECT_EQ(r["rng"][1]["seed"], 7);
  EXPECT_EQ(r["training_args"]["save_total_limit"], 2);
  EXPECT_EQ(r["trainer_state"]["global_step"], 16);
  EXPECT_EQ(r["optimizer"].size(), r["tensors"].size());  // AdamW state for every parameter
  EXPECT_EQ(r["optimizer"][0]["step"]["value"], 16.0);
  bool listed = false;
  for (const auto& p : r["pickles"])
    listed |= p["file"] == "optimizer.pt" && p["pickle"] == "evaluated as data, never executed";
  EXPECT_TRUE(listed);
  EXPECT_TRUE(r["problems"].empty()) << r["problems"];
}

// Issue 10, finding 5: HF's --overwrite_output_dir never deletes anything, so HF users
// pass it by habit. On a real HF run, Lockstep's refuses and removes nothing.
TEST(HfFixture, OverwriteOutputDirNeverDeletesAnHfRun) {
  ScratchDir dir;
  ASSERT_OK(CopyTree(HfRun(), dir.Join("hf")));
  const auto before = RunCommand("cd " + dir.Join("hf") + " && find . -type f | sort | xargs md5sum");
  const auto o = RunCommand(std::string(LOCKSTEP_BIN) + " train --quiet --overwrite_output_dir true --output_dir " +
                            dir.Join("hf"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("is not a Lockstep checkpoint"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("nothing was removed"), std::string::npos) << o.out;
  const auto after =
      RunCommand("cd " + dir.Join("hf") + " && find . -type f -not -name .lockstep.lock | sort | xargs md5sum");
  EXPECT_EQ(after.out, before.out);
}

TEST(HfFixture, TensorTableMatchesTheSafetensorsContent) {
  const std::string path = HfRun() + "/checkpoint-16/model.safetensors";
  // An independent reading: the header parsed here, the floats summed here.
  const std::string bytes = test::ReadAll(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, n));
  json r;
  ASSERT_TRUE(ShowPath(path, ShowOptions(), &r).ok());
  ASSERT_EQ(r["tensors"].size(), header.size() - 1);  // all but __metadata__
  for (const auto& t : r["tensors"]) {
    const json& h = header[t["name"].get<std::string>()];
    EXPECT_EQ(t["shape"], h["shape"]);
    EXPECT_EQ(h["dtype"], "F32");
    EXPECT_EQ(t["dtype"], "float32");
    const uint64_t begin = h["data_offsets"][0], end = h["data_offsets"][1];
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (uint64_t o = begin; o < end; o += 4) {
      float f;
      std::memcpy(&f, bytes.data() + 8 + n + o, 4);
      sum += f;
      lo = std::min<double>(lo, f);
      hi = std::max<double>(hi, f);
    }
    EXPECT_EQ(t["numel"], (end - begin) / 4);
    EXPECT_EQ(t["min"], lo);
    EXPECT_EQ(t["max"], hi);
    EXPECT_NEAR(t["mean"].get<double>(), sum / ((end - begin) / 4), 1e-9);
  }
}

TEST(HfFixture, AuditMatchesWhatHfDid) {
  AuditReport r = Audit(HfRun());
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  ASSERT_EQ(r.checkpoints.size(), 2u);
  EXPECT_EQ(r.checkpoints[0].name, "checkpoint-3");   // kept as the best
  EXPECT_EQ(r.checkpoints[1].name, "checkpoint-16");  // the last
  for (const auto& c : r.checkpoints) {
    EXPECT_EQ(c.layout, "hf");
    EXPECT_EQ(c.status, "complete");
  }
  EXPECT_EQ(r.latest_resumable, "checkpoint-16");
  EXPECT_EQ(r.findings["best_model_checkpoint"]["in_this_run"], "checkpoint-3");
  EXPECT_EQ(r.findings["rotation"]["save_total_limit"], 2);
  EXPECT_EQ(r.findings["rotation"]["holds"], true);
  EXPECT_TRUE(Audit(HfRun(), /*verify=*/true).healthy());
}

TEST(HfAudit, DamageIsNamedAndTheOtherCheckpointStillReported) {
  test::ScratchDir dir;
  ASSERT_TRUE(CopyTree(HfRun(), dir.Join("run")).ok());
  const std::string run = dir.Join("run");
  test::ShrinkFile(run + "/checkpoint-16/model.safetensors", 100);                      // truncated weights
  test::WriteAll(run + "/checkpoint-3/trainer_state.json", std::string(1000000, '['));  // hostile JSON
  AuditReport r = Audit(run);
  EXPECT_FALSE(r.healthy());
  ASSERT_EQ(r.checkpoints.size(), 2u);
  EXPECT_EQ(Find(r, 16).status, "corrupt");
  EXPECT_NE(Find(r, 16).problems.at(0).find("model.safetensors"), std::string::npos) << Find(r, 16).problems.at(0);
  EXPECT_EQ(Find(r, 3).status, "corrupt");
  EXPECT_NE(Find(r, 3).problems.at(0).find("trainer_state.json"), std::string::npos) << Find(r, 3).problems.at(0);
  EXPECT_TRUE(r.latest_resumable.empty());
}

// transformers' JIT checkpointing (a save on SIGTERM) marks its checkpoint-N incomplete until
// the save ends: one still marked is not resumable, and the older checkpoint is.
TEST(HfAudit, AJitSaveStillMarkedIncompleteIsNotResumable) {
  test::ScratchDir dir;
  ASSERT_TRUE(CopyTree(HfRun(), dir.Join("run")).ok());
  const std::string run = dir.Join("run");
  test::WriteAll(run + "/checkpoint-16/checkpoint-is-incomplete.txt",
                 "Checkpoint started at step 16 and in progress...");
  AuditReport r = Audit(run);
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(Find(r, 16).status, "incomplete");
  EXPECT_TRUE(Mentions(Find(r, 16).problems, "checkpoint-is-incomplete.txt")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "checkpoint-3");
}

namespace {

// A sharded HF checkpoint made from the fixture's: model.safetensors split into two shards
// (each a valid safetensors file) plus the index HF writes beside them.
std::string ShardFixtureCheckpoint(const std::string& dir) {
  const std::string ckpt = dir + "/checkpoint-16";
  EXPECT_TRUE(CopyTree(HfRun() + "/checkpoint-16", ckpt).ok());
  const std::string bytes = test::ReadAll(ckpt + "/model.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, n));
  std::vector<std::string> names;
  for (const auto& [name, entry] : header.items()) {
    if (name != "__metadata__") names.push_back(name);
  }
  json weight_map = json::object();
  for (int shard = 0; shard < 2; ++shard) {
    const std::string file = "model-0000" + std::to_string(shard + 1) + "-of-00002.safetensors";
    json h = json::object();
    std::string data;
    for (size_t i = shard; i < names.size(); i += 2) {  // every other tensor
      json e = header[names[i]];
      const uint64_t begin = e["data_offsets"][0], end = e["data_offsets"][1];
      e["data_offsets"] = {data.size(), data.size() + (end - begin)};
      data += bytes.substr(8 + n + begin, end - begin);
      h[names[i]] = e;
      weight_map[names[i]] = file;
    }
    WriteSafetensors(ckpt + "/" + file, h.dump(), data);
  }
  test::WriteAll(ckpt + "/model.safetensors.index.json",
                 json{{"metadata", {{"total_size", bytes.size() - 8 - n}}}, {"weight_map", weight_map}}.dump());
  fs::remove(ckpt + "/model.safetensors");
  return ckpt;
}

}  // namespace

TEST(HfSharded, IndexAndShardsAreReadAsOneModel) {
  test::ScratchDir dir;
  const std::string ckpt = ShardFixtureCheckpoint(dir.path());
  json whole, sharded;
  ASSERT_TRUE(ShowPath(HfRun() + "/checkpoint-16", ShowOptions(), &whole).ok());
  ASSERT_TRUE(ShowPath(ckpt, ShowOptions(), &sharded).ok());
  EXPECT_TRUE(sharded["problems"].empty()) << sharded["problems"];
  ASSERT_EQ(sharded["tensors"].size(), whole["tensors"].size());
  std::map<std::string, json> by_name;
  for (const auto& t : whole["tensors"]) by_name[t["name"].get<std::string>()] = t;
  std::set<std::string> files;
  for (const auto& t : sharded["tensors"]) {
    const json& w = by_name.at(t["name"].get<std::string>());
    for (const char* k : {"dtype", "shape", "numel", "min", "max", "mean", "xxh3_128"}) EXPECT_EQ(t[k], w[k]) << k;
    files.insert(t["file"].get<std::string>());
  }
  EXPECT_EQ(files.size(), 2u);  // both shards were read
  AuditReport r = Audit(dir.path(), /*verify=*/true);
  EXPECT_EQ(Find(r, 16).status, "complete") << AuditReportJson(r).dump(2);
}

TEST(HfSharded, MissingShardAndEscapingShardNameAreNamed) {
  test::ScratchDir dir;
  const std::string ckpt = ShardFixtureCheckpoint(dir.path());
  fs::remove(ckpt + "/model-00002-of-00002.safetensors");
  AuditReport r = Audit(dir.path());
  EXPECT_EQ(Find(r, 16).status, "incomplete");
  EXPECT_NE(Find(r, 16).problems.at(0).find("model-00002-of-00002.safetensors: shard named by the index is missing"),
            std::string::npos)
      << Find(r, 16).problems.at(0);
  test::WriteAll(ckpt + "/model.safetensors.index.json", R"({"weight_map": {"wte.weight": "../../etc/passwd"}})");
  r = Audit(dir.path());
  EXPECT_EQ(Find(r, 16).status, "corrupt");
  EXPECT_NE(Find(r, 16).problems.at(0).find("model.safetensors.index.json"), std::string::npos)
      << Find(r, 16).problems.at(0);
}

TEST(HfAudit, PerRankRngFilesStagingLeftoversAndOldTrainerState) {
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  ASSERT_TRUE(CopyTree(HfRun(), run).ok());
  const std::string ckpt = run + "/checkpoint-16";
  // A three-process run whose rank 1 died before saving its RNG state.
  fs::rename(ckpt + "/rng_state.pth", ckpt + "/rng_state_0.pth");
  fs::copy_file(ckpt + "/rng_state_0.pth", ckpt + "/rng_state_2.pth");
  fs::create_directory(run + "/tmp-checkpoint-19");  // a staged HF save, never renamed
  AuditReport r = Audit(run);
  EXPECT_EQ(Find(r, 16).status, "incomplete");
  ASSERT_FALSE(Find(r, 16).problems.empty());
  EXPECT_NE(Find(r, 16).problems[0].find("rng_state_1.pth: missing (rank 1 of the job's 3 saves it; rng_state_2.pth"),
            std::string::npos)
      << Find(r, 16).problems[0];
  bool staging = false;
  for (const auto& p : r.problems) staging |= p.find("tmp-checkpoint-19: leftover staging") != std::string::npos;
  EXPECT_TRUE(staging) << AuditReportJson(r).dump(2);
  fs::copy_file(ckpt + "/rng_state_0.pth", ckpt + "/rng_state_1.pth");
  fs::remove(run + "/tmp-checkpoint-19");
  // An older transformers: trainer_state.json with only the two fields every version has.
  test::WriteAll(ckpt + "/trainer_state.json", R"({"global_step": 16, "log_history": [{"step": 16, "loss": 3.9}]})");
  r = Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  json shown;
  ASSERT_TRUE(ShowPath(ckpt, ShowOptions(), &shown).ok());
  EXPECT_TRUE(shown["problems"].empty()) << shown["problems"];
  EXPECT_EQ(shown["trainer_state"]["global_step"], 16);
  ASSERT_EQ(shown["rng"].size(), 6u);  // cpu and cuda for each of three ranks, in rank order
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(shown["rng"][i]["file"], "rng_state_" + std::to_string(i / 2) + ".pth");
}

}  // namespace lockstep
