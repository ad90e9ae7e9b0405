// inspect and the framework-free readers: safetensors (every bad-header case), torch zip
// archives read as data, the HF fixture audited as HF left it, Lockstep runs healthy,
// incomplete, corrupt and rotated, and hostile inputs. This binary does not link LibTorch:
// runs are made by the lockstep binary.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/pickle_scan.h"
#include "formats/safetensors.h"
#include "formats/zip_archive.h"
#include "inspect/audit.h"
#include "inspect/show.h"
#include "inspect/tensor_stats.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

// A safetensors file from a header (as JSON text) and a data section.
void WriteSafetensors(const std::string& path, const std::string& header, const std::string& data,
                      int64_t claimed_len = -1) {
  const uint64_t n = claimed_len >= 0 ? static_cast<uint64_t>(claimed_len) : header.size();
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  test::WriteAll(path, bytes + header + data);
}

Status HeaderOf(const std::string& path) {
  SafetensorsFile f;
  return ReadSafetensorsHeader(path, &f);
}

void ExpectCorrupt(const Status& st, const std::string& needle) {
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

std::string HfRun() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/lockstep-hf-fixture-XXXXXX";
    const std::string d = ::mkdtemp(tmpl);
    const std::string cmd = "tar xzf " + std::string(LOCKSTEP_SHARED_DIR) + "/fixtures/hf/hf_gpt2_run.tar.gz -C " + d;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return d + "/hf_gpt2_run";
  }();
  return dir;
}

// A small Lockstep run made by the lockstep binary: 16 steps, saves at 4, 8, 12, 16.
std::string Train(const std::string& dir, const std::string& extra = "", int hidden_size = 16) {
  const std::string cmd = std::string(LOCKSTEP_BIN) + " train --quiet --output_dir " + dir +
                          " --train_samples 37 --per_device_train_batch_size 5 --num_train_epochs 2 --hidden_size " +
                          std::to_string(hidden_size) + " --save_steps 4 " + extra + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return dir;
}

AuditReport Audit(const std::string& dir, bool verify = false) {
  AuditOptions o;
  o.verify = verify;
  AuditReport r;
  Status st = AuditRun(dir, o, &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return r;
}

const CheckpointAudit& Find(const AuditReport& r, int64_t step) {
  for (const auto& c : r.checkpoints) if (c.step == step) return c;
  static CheckpointAudit none;
  ADD_FAILURE() << "no checkpoint-" << step;
  return none;
}

}  // namespace

TEST(Safetensors, ValidFileStreamsAndDecodesHalfPrecision) {
  test::ScratchDir dir;
  // bf16 1.5 = 0x3fc0, f16 -2.0 = 0xc000, f32 [1, NaN].
  std::string data = std::string("\xc0\x3f", 2) + std::string("\x00\xc0", 2);
  const float f[2] = {1.0f, NAN};
  data.append(reinterpret_cast<const char*>(f), 8);
  WriteSafetensors(dir.Join("m.safetensors"),
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

TEST(Safetensors, EveryBadHeaderIsNamed) {
  test::ScratchDir dir;
  const std::string p = dir.Join("bad.safetensors");
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  WriteSafetensors(p, "{" + ok_entry + "}", std::string(8, '\0'), 1000);
  ExpectCorrupt(HeaderOf(p), "runs past the end");
  WriteSafetensors(p, "{" + ok_entry + "}", std::string(8, '\0'), (200ll << 20));
  ExpectCorrupt(HeaderOf(p), "over the 100 MB limit");
  WriteSafetensors(p, "[" + ok_entry + "]", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "does not start with '{'");
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                   std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "overlaps");
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "hole of 4 bytes");
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "run past the end of the data");
  WriteSafetensors(p, R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "unknown dtype 'F31'");
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "needs 12 bytes");
  WriteSafetensors(p, "{" + ok_entry + "}", std::string(12, '\0'));
  ExpectCorrupt(HeaderOf(p), "belong to none");
  test::WriteAll(p, "abc");
  ExpectCorrupt(HeaderOf(p), "too short");
}

// Bytes that are not UTF-8 reach messages and names (a safetensors header, a zip entry);
// the report must still print, as text and as JSON, with exit 1 or 2, never an abort.
TEST(Safetensors, InvalidUtf8ReachesTheReportWithoutACrash) {
  test::ScratchDir dir;
  WriteSafetensors(dir.Join("bad.safetensors"), "{\"t\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                   std::string(4, '\0'));
  const std::string cmd = "cd " + dir.path() + " && python3 -c \"import zipfile;z=zipfile.ZipFile('x.pt','w');"
                          "z.writestr(zipfile.ZipInfo('archive/data.pkl'),b'\\x80\\x02X\\x02\\x00\\x00\\x00\\xff\\xfe.');z.close()\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  for (const std::string file : {"bad.safetensors", "x.pt"}) {
    for (const std::string flags : {"", " --json"}) {
      const int status = std::system((std::string(LOCKSTEP_BIN) + " inspect " + dir.Join(file) + flags + " > /dev/null 2>&1").c_str());
      ASSERT_TRUE(WIFEXITED(status)) << file << flags;
      EXPECT_LE(WEXITSTATUS(status), 2) << file << flags;
    }
  }
}

// A seeded mutant of `data`: a few bytes overwritten (near the head, anywhere, near the
// tail, where the structure of these formats lives), 8 random bytes, or a truncation.
std::string Mutate(const std::string& data, std::mt19937* gen) {
  std::string d = data;
  auto below = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(*gen); };
  const size_t mode = below(10);
  if (mode < 6) {
    for (size_t k = 0, n = 1 + below(8); k < n; ++k) {
      const size_t where[3] = {below(std::min<size_t>(d.size(), 4096)), below(d.size()),
                               d.size() - 1 - below(std::min<size_t>(d.size(), 2048))};
      d[where[below(3)]] = static_cast<char>(below(256));
    }
  } else if (mode < 8) {
    d.resize(below(d.size()));
  } else {
    const size_t at = below(d.size());
    for (size_t k = at; k < std::min(d.size(), at + 8); ++k) d[k] = static_cast<char>(below(256));
  }
  return d;
}

// The fuzzing that found two aborts (type errors and invalid UTF-8), kept as a test:
// every mutant is reported, as a table or as problems, and never throws.
TEST(HostileFiles, SeededMutantsOfEveryFormatAreReportedNeverThrown) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  const std::string hf = HfRun() + "/checkpoint-16/";
  std::mt19937 gen(20261122);
  for (const std::string source : {hf + "model.safetensors", hf + "optimizer.pt", hf + "rng_state.pth",
                                   hf + "training_args.bin", run + "/checkpoint-16/model.h5",
                                   run + "/checkpoint-16/optimizer.h5"}) {
    const std::string data = test::ReadAll(source);
    const std::string mutant = dir.Join("mutant" + fs::path(source).extension().string());
    int with_problems = 0;
    for (int i = 0; i < 60; ++i) {
      test::WriteAll(mutant, Mutate(data, &gen));
      json report;
      std::string text;
      EXPECT_NO_THROW({
        if (ShowPath(mutant, ShowOptions(), &report).ok()) text = DumpJson(report, 2);
      }) << source << " mutant " << i;
      with_problems += !report["problems"].empty();
    }
    EXPECT_GT(with_problems, 0) << source;  // the mutations do reach the readers
  }
}

TEST(TorchArchive, EntriesEscapingTheArchiveAreRefused) {
  test::ScratchDir dir;
  for (const std::string name : {"../evil", "/abs/evil", "a/../../evil"}) {
    const std::string zip = dir.Join("x.pt");
    const std::string cmd = "cd " + dir.path() + " && rm -f x.pt && python3 -c \"import zipfile;z=zipfile.ZipFile('x.pt','w');"
                            "z.writestr(zipfile.ZipInfo('" + name + "'),'data');z.close()\"";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    std::vector<ZipEntry> entries;
    ExpectCorrupt(ListZip(zip, &entries), "escapes the archive");
  }
  test::WriteAll(dir.Join("y.pt"), "PK\x03\x04 not really a zip archive, only its first bytes");
  std::vector<ZipEntry> entries;
  ExpectCorrupt(ListZip(dir.Join("y.pt"), &entries), "no zip end-of-directory record");
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
  for (const auto& p : r["pickles"]) listed |= p["file"] == "optimizer.pt" && p["pickle"] == "listed, never executed";
  EXPECT_TRUE(listed);
  EXPECT_TRUE(r["problems"].empty()) << r["problems"];
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
  EXPECT_EQ(r.checkpoints[0].name, "checkpoint-3");  // kept as the best
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
  test::ShrinkFile(run + "/checkpoint-16/model.safetensors", 100);  // truncated weights
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

TEST(LockstepAudit, HealthyRunCoversEveryCheckpoint) {
  test::ScratchDir dir;
  AuditReport r = Audit(Train(dir.Join("run")));
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  ASSERT_EQ(r.checkpoints.size(), 4u);
  EXPECT_EQ(r.latest_resumable, "checkpoint-16");
  EXPECT_EQ(r.findings["step_log"]["uncovered_checkpoints"].size(), 0u);
  EXPECT_TRUE(Audit(dir.Join("run"), true).healthy());
}

TEST(LockstepAudit, IncompleteCorruptAndLeftoversAreEachNamed) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  fs::remove(run + "/checkpoint-16/manifest.json");             // a save that never committed
  test::FlipByte(run + "/checkpoint-8/model.h5", -20);         // same size: only --verify sees it
  test::ShrinkFile(run + "/checkpoint-4/optimizer.h5", 10);    // a size mismatch: always seen
  fs::create_directory(run + "/.staging-checkpoint-20-123");
  AuditReport cheap = Audit(run);
  EXPECT_EQ(Find(cheap, 16).status, "incomplete");
  EXPECT_EQ(Find(cheap, 4).status, "corrupt");
  EXPECT_EQ(Find(cheap, 8).status, "complete");
  EXPECT_EQ(Find(cheap, 12).status, "complete");
  EXPECT_EQ(cheap.latest_resumable, "checkpoint-12");
  bool staging = false;
  for (const auto& p : cheap.problems) staging |= p.find(".staging-checkpoint-20-123: leftover") != std::string::npos;
  EXPECT_TRUE(staging);
  AuditReport verified = Audit(run, true);
  EXPECT_EQ(Find(verified, 8).status, "corrupt");
  EXPECT_NE(Find(verified, 8).problems.at(0).find("model.h5: checksum"), std::string::npos) << Find(verified, 8).problems.at(0);
}

TEST(LockstepAudit, RotationHoldsAndAViolationIsNamed) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"), "--save_total_limit 2");
  AuditReport r = Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.checkpoints.size(), 2u);
  ASSERT_TRUE(CopyTree(run + "/checkpoint-12", run + "/checkpoint-4").ok());  // rotation missed one
  r = Audit(run);
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(r.findings["rotation"]["holds"], false);
}

TEST(LockstepAudit, ManifestOutsideAndSymlinkLoopsAreNamed) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  json manifest;
  ASSERT_TRUE(ReadJsonFile(run + "/checkpoint-12/manifest.json", &manifest).ok());
  manifest["files"][0]["path"] = "../../etc/passwd";
  ASSERT_TRUE(WriteJsonFile(run + "/checkpoint-12/manifest.json", manifest).ok());
  fs::create_directory_symlink("checkpoint-7", run + "/checkpoint-7");  // a loop
  AuditReport r = Audit(run);
  EXPECT_EQ(Find(r, 12).status, "corrupt");
  EXPECT_NE(Find(r, 12).problems.at(0).find("outside the checkpoint"), std::string::npos) << Find(r, 12).problems.at(0);
  EXPECT_EQ(Find(r, 7).status, "corrupt");
  EXPECT_EQ(Find(r, 16).status, "complete");  // the others are still reported
}

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
            std::string::npos) << Find(r, 16).problems.at(0);
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
  EXPECT_NE(Find(r, 16).problems[0].find("rng_state_1.pth: missing, though rank 2 saved"), std::string::npos)
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

// JSON that parses but holds the wrong types where the readers expect others: each case
// is a named problem, never an exception (json::value() throws on a type mismatch).
TEST(LockstepAudit, JsonOfTheWrongTypesIsNamedNotACrash) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  test::WriteAll(run + "/checkpoint-16/manifest.json", R"({"magic": 5, "files": "all"})");
  test::WriteAll(run + "/trainer_state.json", "[1, 2]");
  AuditReport r = Audit(run);
  EXPECT_EQ(Find(r, 16).status, "corrupt");
  EXPECT_NE(Find(r, 16).problems.at(0).find("not a Lockstep manifest"), std::string::npos) << Find(r, 16).problems[0];
  EXPECT_EQ(Find(r, 12).status, "complete");
  bool named = false;
  for (const auto& p : r.problems) named |= p.find("trainer_state.json: not a JSON object") != std::string::npos;
  EXPECT_TRUE(named) << AuditReportJson(r).dump(2);
  for (const std::string best : {"7", "\"../../\"", "\"\"", "\"/elsewhere/checkpoint-99/\""}) {
    test::WriteAll(run + "/trainer_state.json", "{\"best_model_checkpoint\": " + best + "}");
    r = Audit(run);
    EXPECT_FALSE(r.healthy()) << best;
    named = false;
    for (const auto& p : r.problems) named |= p.find("best_model_checkpoint") != std::string::npos;
    EXPECT_TRUE(named) << best << AuditReportJson(r).dump(2);
  }
  test::WriteAll(run + "/trainer_state.json", R"({"best_model_checkpoint": "/elsewhere/checkpoint-12/"})");
  r = Audit(run);
  EXPECT_EQ(r.findings["best_model_checkpoint"]["in_this_run"], "checkpoint-12");  // matched by name
  EXPECT_EQ(r.findings["best_model_checkpoint"]["exists"], true);
}

TEST(LockstepAudit, VerifyProgressCoversTheWholeRunInChunks) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"), "", /*hidden_size=*/512);  // model.h5 > one 256 KiB chunk
  fs::remove(run + "/checkpoint-16/manifest.json");  // incomplete: not verified, not counted
  AuditOptions o;
  o.verify = true;
  std::vector<uint64_t> done;
  std::vector<std::string> names;
  uint64_t total = 0;
  o.progress = [&](uint64_t d, uint64_t t, const std::string& checkpoint) {
    done.push_back(d);
    total = t;
    if (names.empty() || names.back() != checkpoint) names.push_back(checkpoint);
  };
  AuditReport r;
  ASSERT_TRUE(AuditRun(run, o, &r).ok());
  uint64_t verified = 0;
  for (const auto& c : r.checkpoints) verified += c.status == "complete" ? c.bytes : 0;
  ASSERT_FALSE(done.empty());
  EXPECT_TRUE(std::is_sorted(done.begin(), done.end()));
  EXPECT_EQ(done.back(), verified);
  EXPECT_EQ(total, verified);  // known before the first byte was read
  EXPECT_GT(done.size(), 2 * names.size());  // more than one call per file: chunks
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-4", "checkpoint-8", "checkpoint-12"}));
}

TEST(LockstepShow, BitFlipsAreNamedByShow) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  json r;
  ASSERT_TRUE(ShowPath(run + "/checkpoint-16", ShowOptions(), &r).ok());
  EXPECT_EQ(r["manifest"], "every checksum matches");
  // A flipped bit in tensor data: HDF5 reads it happily; the manifest's checksum does not.
  test::FlipByte(run + "/checkpoint-16/model.h5", -20);
  ASSERT_TRUE(ShowPath(run + "/checkpoint-16", ShowOptions(), &r).ok());
  EXPECT_EQ(r["manifest"], "MISMATCH");
  ASSERT_FALSE(r["problems"].empty());
  EXPECT_NE(r["problems"].back().get<std::string>().find("model.h5: checksum"), std::string::npos) << r["problems"];
  // A flipped bit in HDF5's own metadata (the superblock signature): a clear problem, no crash.
  fs::copy_file(run + "/checkpoint-12/model.h5", dir.Join("alone.h5"));
  test::FlipByte(dir.Join("alone.h5"), 1);
  ASSERT_TRUE(ShowPath(dir.Join("alone.h5"), ShowOptions(), &r).ok());
  ASSERT_FALSE(r["problems"].empty());
  EXPECT_NE(r["problems"][0].get<std::string>().find("alone.h5"), std::string::npos) << r["problems"];
  EXPECT_TRUE(r["tensors"].empty());
}

TEST(LockstepShow, TruncatedTensorFileIsAProblemNamingIt) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  json r;
  ASSERT_TRUE(ShowPath(run + "/checkpoint-16", ShowOptions{"fc1", "fc1.bias", 2}, &r).ok());
  EXPECT_TRUE(r["problems"].empty()) << r["problems"];
  for (const auto& t : r["tensors"]) EXPECT_NE(t["name"].get<std::string>().find("fc1"), std::string::npos);
  EXPECT_EQ(r["values"]["first"].size(), 2u);
  EXPECT_EQ(r["rng"][0]["generator"], "cpu");
  EXPECT_EQ(r["sampler"]["epoch"], 1);
  test::ShrinkFile(run + "/checkpoint-16/model.h5", 100);
  ASSERT_TRUE(ShowPath(run + "/checkpoint-16", ShowOptions(), &r).ok());
  ASSERT_FALSE(r["problems"].empty());
  EXPECT_NE(r["problems"][0].get<std::string>().find("model.h5"), std::string::npos) << r["problems"];
}

}  // namespace lockstep
