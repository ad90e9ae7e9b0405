// Directories the real libraries wrote (fixtures/real/make_fixtures.py: transformers, PEFT,
// torch; versions.txt), audited and diffed by their own rules (issue 21, findings 4 and 5):
// an output_dir after save_model() + save_state() is a run whose checkpoints are audited, a
// PEFT adapter is the model, save_only_model checkpoints are complete but not resumable, and
// a truncated or missing file is named.
#include <algorithm>
#include <filesystem>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "diff/tensor_diff.h"
#include "formats/zip_archive.h"
#include "inspect/audit.h"
#include "inspect/show.h"
#include "tests/inspect_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

using test::Mentions;

// A fresh copy of fixtures/real/NAME.tar.gz's NAME/ in `dir`.
std::string Unpack(const test::ScratchDir& dir, const std::string& name) {
  const auto o =
      test::RunCommand("tar xzf " + std::string(LOCKSTEP_FIXTURES_DIR) + "/real/" + name + ".tar.gz -C " + dir.path());
  EXPECT_EQ(o.code, 0) << o.out;
  return dir.Join(name);
}

test::CommandOutput Lockstep(const std::string& args) {
  return test::RunCommand(std::string(LOCKSTEP_BIN) + " " + args);
}

TEST(RealLayouts, AnOutputDirAfterSaveModelIsAuditedAsARun) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "hf_full_run");
  AuditReport r = test::Audit(run);
  ASSERT_EQ(r.checkpoints.size(), 2u);  // it used to be shown as one "hf checkpoint"
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "checkpoint-4");
  EXPECT_EQ(r.findings["final_model"]["file"], "model.safetensors");
  EXPECT_GT(r.findings["final_model"]["tensors"].get<int64_t>(), 10);

  test::ShrinkFile(run + "/checkpoint-4/model.safetensors", 100);
  fs::remove(run + "/checkpoint-2/optimizer.pt");
  test::ShrinkFile(run + "/model.safetensors", 100);
  const auto o = Lockstep("inspect " + run);
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("checkpoint-4/model.safetensors"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("checkpoint-2/optimizer.pt: missing"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("latest resumable         (none)"), std::string::npos) << o.out;
  r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_EQ(test::Find(r, 2).status, "incomplete");
  EXPECT_TRUE(Mentions(r.problems, run + "/model.safetensors")) << AuditReportJson(r).dump(2);
}

TEST(RealLayouts, APeftAdapterIsTheModel) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "peft_lora_run");
  AuditReport r = test::Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);  // its top-level files are no strays
  EXPECT_TRUE(r.notes.empty()) << AuditReportJson(r).dump(2);
  EXPECT_EQ(test::Find(r, 4).tensors, 2);
  json shown;
  ASSERT_OK(ShowPath(run + "/checkpoint-4", ShowOptions(), &shown));
  ASSERT_EQ(shown["tensors"].size(), 2u) << shown.dump(2);
  EXPECT_NE(shown["tensors"][0]["name"].get<std::string>().find("lora_A"), std::string::npos);
  CheckpointDiff d;
  ASSERT_OK(DiffCheckpoints(run + "/checkpoint-2", run + "/checkpoint-4", Tolerance(), &d));
  EXPECT_EQ(d.tensors[0].name.find("base_model.model."), 0u) << d.tensors[0].name;  // by tensor, not by hash

  test::ShrinkFile(run + "/checkpoint-4/adapter_model.safetensors", 64);
  fs::remove(run + "/checkpoint-2/adapter_config.json");
  r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "adapter_model.safetensors")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(test::Find(r, 2).status, "incomplete");
  EXPECT_TRUE(Mentions(test::Find(r, 2).problems, "adapter_config.json: missing")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "");
}

TEST(RealLayouts, SaveOnlyModelCheckpointsAreCompleteButNotResumable) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "only_model_run");
  const AuditReport r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "complete");
  EXPECT_FALSE(test::Find(r, 4).resumable);
  EXPECT_TRUE(Mentions(test::Find(r, 4).notes, "save_only_model")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "");
  // A weights-only run is what save_only_model asks for: said, and healthy (issue 33).
  EXPECT_TRUE(Mentions(r.notes, "no checkpoint a resume continues exactly")) << AuditReportJson(r).dump(2);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
}

TEST(RealLayouts, PytorchModelBinIsReadAsData) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "bin_weights_run");
  AuditReport r = test::Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  EXPECT_GT(test::Find(r, 4).tensors, 10);
  json shown;
  ASSERT_OK(ShowPath(run + "/checkpoint-4", ShowOptions(), &shown));
  EXPECT_EQ(shown["tensors"].size(), static_cast<size_t>(test::Find(r, 4).tensors)) << shown.dump(2);
  test::ShrinkFile(run + "/checkpoint-4/pytorch_model.bin", 2000);
  r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "pytorch_model.bin")) << AuditReportJson(r).dump(2);
}

// FSDP with SHARDED_STATE_DICT (accelerate's save_fsdp_model/save_fsdp_optimizer on 2 ranks):
// the DCP shards are read tensor by tensor, equal to torch's own assembly (dcp_to_torch_save);
// a truncated shard and a missing rank's RNG file are named.
TEST(RealLayouts, AnFsdpShardedCheckpointIsReadFromItsDcpShards) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "fsdp_run");
  AuditReport r = test::Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "checkpoint-4");  // it used to be "unknown incomplete 0 B"
  EXPECT_EQ(test::Find(r, 4).tensors, 17);
  CheckpointDiff d;
  ASSERT_OK(DiffCheckpoints(run + "/checkpoint-4/pytorch_model_fsdp_0",
                            std::string(LOCKSTEP_FIXTURES_DIR) + "/real/fsdp_model_by_torch.pt", Tolerance(), &d));
  EXPECT_EQ(d.tensors.size(), 17u);
  EXPECT_TRUE(d.identical()) << CheckpointDiffText(d, Tolerance());
  ASSERT_OK(DiffCheckpoints(run + "/checkpoint-4", run + "/checkpoint-4", Tolerance(), &d));
  EXPECT_GT(d.tensors.size(), 17u);  // the model and optimizer_0's state, tensor by tensor
  EXPECT_TRUE(d.identical());

  test::ShrinkFile(run + "/checkpoint-4/pytorch_model_fsdp_0/__1_0.distcp", 100);
  fs::remove(run + "/checkpoint-4/rng_state_1.pth");
  r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "pytorch_model_fsdp_0/__1_0.distcp: truncated"))
      << AuditReportJson(r).dump(2);
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "rng_state_1.pth: missing")) << AuditReportJson(r).dump(2);
  const auto o = Lockstep("diff " + run + "/checkpoint-4 " + run + "/checkpoint-4");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("__1_0.distcp: truncated"), std::string::npos) << o.out;
}

TEST(RealLayouts, ABareDcpCheckpointIsListedAndItsFilesChecked) {
  test::ScratchDir dir;
  const std::string dcp = Unpack(dir, "dcp_checkpoint");
  json shown;
  ASSERT_OK(ShowPath(dcp, ShowOptions(), &shown));
  EXPECT_EQ(shown["kind"], "dcp checkpoint");
  EXPECT_GT(shown["tensors"].size(), 30u) << shown.dump(2);  // the model and the optimizer state
  EXPECT_TRUE(shown["problems"].empty()) << shown["problems"];
  test::ShrinkFile(dcp + "/__0_0.distcp", 1000);
  const auto o = Lockstep("inspect " + dcp);
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("__0_0.distcp: truncated"), std::string::npos) << o.out;
}

// DeepSpeed ZeRO-2 and ZeRO-3 (the engine's save_checkpoint on 2 Gloo ranks inside an HF
// checkpoint): audited as DeepSpeed's load_checkpoint reads them, diffed shard by shard.
TEST(RealLayouts, DeepSpeedCheckpointsAreAuditedByTheirOwnRules) {
  test::ScratchDir dir;
  for (const std::string name : {"deepspeed_zero2_run", "deepspeed_zero3_run"}) {
    const std::string run = Unpack(dir, name);
    AuditReport r = test::Audit(run);
    EXPECT_TRUE(r.healthy()) << name << AuditReportJson(r).dump(2);  // it used to be "optimizer.pt missing"
    CheckpointDiff d;
    ASSERT_OK(DiffCheckpoints(run + "/checkpoint-4", run + "/checkpoint-4", Tolerance(), &d));
    EXPECT_TRUE(d.identical());
    bool rank1_shard = false;
    for (const auto& t : d.tensors)
      rank1_shard |= t.name.rfind("deepspeed/zero_pp_rank_1_mp_rank_00_optim_states.pt/", 0) == 0;
    EXPECT_TRUE(rank1_shard) << name;
    json shown;  // inspect lists the shards' tensors
    ASSERT_OK(ShowPath(run + "/checkpoint-4", ShowOptions(), &shown));
    bool listed = false;
    for (const auto& t : shown["tensors"]) {
      listed |= t["file"] == "global_step4/zero_pp_rank_1_mp_rank_00_optim_states.pt" &&
                t["name"].get<std::string>().find("exp_avg") != std::string::npos;
    }
    EXPECT_TRUE(listed) << name << shown["tensors"].dump();
  }
  const std::string ck = dir.Join("deepspeed_zero3_run/checkpoint-4");
  fs::remove(ck + "/global_step4/zero_pp_rank_1_mp_rank_00_optim_states.pt");
  test::ShrinkFile(ck + "/global_step4/zero_pp_rank_0_mp_rank_00_model_states.pt", 500);
  AuditReport r = test::Audit(dir.Join("deepspeed_zero3_run"));
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "zero_pp_rank_1_mp_rank_00_optim_states.pt: missing (rank 1's"))
      << AuditReportJson(r).dump(2);
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "zero_pp_rank_0_mp_rank_00_model_states.pt"))
      << AuditReportJson(r).dump(2);
  fs::remove(dir.Join("deepspeed_zero2_run/checkpoint-4/latest"));
  r = test::Audit(dir.Join("deepspeed_zero2_run"));
  EXPECT_EQ(test::Find(r, 4).status, "incomplete");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "latest: missing")) << AuditReportJson(r).dump(2);
}

// Seeded mutants of DCP's metadata and shards and of DeepSpeed's shards: reported, never
// thrown or crashed on, as every reader of untrusted bytes.
TEST(RealLayouts, SeededMutantsOfShardedLayoutsAreReportedNeverThrown) {
  test::ScratchDir dir;
  const std::string fsdp = Unpack(dir, "fsdp_run") + "/checkpoint-4";
  const std::string ds = Unpack(dir, "deepspeed_zero3_run") + "/checkpoint-4";
  std::mt19937 gen(20261203);
  for (const std::string file : {fsdp + "/pytorch_model_fsdp_0/.metadata", fsdp + "/optimizer_0/__1_0.distcp",
                                 ds + "/global_step4/zero_pp_rank_1_mp_rank_00_optim_states.pt"}) {
    const std::string original = test::ReadAll(file);
    const std::string checkpoint = file.rfind(fsdp, 0) == 0 ? fsdp : ds;
    int caught = 0;
    for (int i = 0; i < 40; ++i) {
      test::WriteAll(file, test::Mutate(original, &gen));
      json shown;
      CheckpointDiff d;
      AuditReport r;
      EXPECT_NO_THROW({
        (void)ShowPath(checkpoint, ShowOptions(), &shown);
        caught += !DiffCheckpoints(checkpoint, checkpoint, Tolerance(), &d).ok();
        (void)AuditRun(fs::path(checkpoint).parent_path().string(), AuditOptions(), &r);
      }) << file
         << " mutant " << i;
    }
    test::WriteAll(file, original);
    EXPECT_GT(caught, 0) << file;  // the mutations reach the readers
  }
}

// Issue 21, finding 15: an incomplete checkpoint (no manifest) was listed as "0 B".
TEST(RealLayouts, AnIncompleteCheckpointShowsTheBytesItHolds) {
  test::ScratchDir dir;
  const std::string run = test::Train(dir.Join("run"));
  fs::remove(run + "/checkpoint-16/manifest.json");
  const AuditReport r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 16).status, "incomplete");
  EXPECT_GT(test::Find(r, 16).bytes, 1000u);
  // Issue 33, finding 8: "incomplete" beside "resumable: yes" in the report's audit table.
  EXPECT_FALSE(test::Find(r, 16).resumable);
}

// A data-parallel HF run: one rng_state_<rank>.pth per process; a gap is named.
TEST(RealLayouts, ADataParallelRunNeedsEveryRanksRngFile) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "ddp_run");
  EXPECT_TRUE(test::Audit(run).healthy());
  fs::remove(run + "/checkpoint-4/rng_state_0.pth");
  const AuditReport r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "incomplete");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "rng_state_0.pth: missing")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "checkpoint-2");
}

// Issue 35's new-user trial: a DDP script that saves state.pt and names each rank's generator
// file as the Trainer does (rng_state_<r>.pth) wrote a checkpoint of its own, not an HF
// checkpoint missing its weights: the Trainer writes rng_state files after the weights.
TEST(RealLayouts, AScriptsOwnCheckpointNamingItsGeneratorsAsTheTrainerDoesIsItsOwn) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "ddp_run"), own = dir.Join("own/checkpoint-4");
  fs::create_directories(own);
  for (const char* f : {"rng_state_0.pth", "rng_state_1.pth"}) fs::copy_file(run + "/checkpoint-4/" + f, own + "/" + f);
  fs::copy_file(run + "/checkpoint-4/optimizer.pt", own + "/state.pt");
  const AuditReport r = test::Audit(dir.Join("own"));
  EXPECT_NE(test::Find(r, 4).layout, "hf") << AuditReportJson(r).dump(2);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
}

// Issue 33, finding 2: the job's size is what the checkpoint says (training_args.bin's
// distributed_state), not the highest file present: a 2-rank run that lost rank 1's RNG
// file everywhere was healthy.
TEST(RealLayouts, ARunThatLostItsHighestRankEverywhereIsNamed) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "ddp_run");
  for (const char* c : {"/checkpoint-2", "/checkpoint-4"}) fs::remove(run + c + "/rng_state_1.pth");
  const AuditReport r = test::Audit(run);
  for (int64_t step : {2, 4}) {
    EXPECT_EQ(test::Find(r, step).status, "incomplete");
    EXPECT_TRUE(Mentions(test::Find(r, step).problems, "rng_state_1.pth: missing (rank 1 of the job's 2"))
        << AuditReportJson(r).dump(2);
    EXPECT_TRUE(Mentions(test::Find(r, step).problems, "training_args.bin says the job had 2 processes"));
  }
  EXPECT_FALSE(r.healthy());
}

// Issue 33, finding 1: --verify checks the CRC-32 a torch archive records for every entry
// (one flipped byte inside a tensor of optimizer.pt was healthy), and says which files it
// could not verify because their format carries no checksum.
TEST(RealLayouts, VerifyChecksEveryTorchArchivesCrcAndSaysWhatHasNoChecksum) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "hf_full_run");
  auto o = Lockstep("inspect " + run + " --verify");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("not verifiable, no checksum (read whole; a changed byte in them cannot be seen): "),
            std::string::npos)
      << o.out;
  AuditReport r = test::Audit(run, /*verify=*/true);
  const auto& v = test::Find(r, 4).verification;
  EXPECT_NE(std::find(v.verified.begin(), v.verified.end(), "checkpoint-4/optimizer.pt"), v.verified.end());
  EXPECT_NE(std::find(v.unverifiable.begin(), v.unverifiable.end(), "checkpoint-4/model.safetensors"),
            v.unverifiable.end());
  // One byte in the middle of the largest entry's data (a tensor's storage).
  const std::string optimizer = run + "/checkpoint-4/optimizer.pt";
  std::vector<ZipEntry> entries;
  ASSERT_OK(ListZip(optimizer, &entries));
  const ZipEntry& largest = *std::max_element(entries.begin(), entries.end(),
                                              [](const ZipEntry& a, const ZipEntry& b) { return a.size < b.size; });
  const std::string bytes = test::ReadAll(optimizer);
  const auto le16 = [&](size_t at) {
    return static_cast<uint8_t>(bytes[at]) | static_cast<uint8_t>(bytes[at + 1]) << 8;
  };
  const size_t data = largest.local_header_offset + 30 + le16(largest.local_header_offset + 26) +
                      le16(largest.local_header_offset + 28);
  test::FlipByte(optimizer, static_cast<int64_t>(data + largest.size / 2), 0x01);
  r = test::Audit(run, /*verify=*/true);
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "optimizer.pt: entry")) << AuditReportJson(r).dump(2);
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "has CRC-32")) << AuditReportJson(r).dump(2);
  o = Lockstep("inspect " + run + " --verify");
  EXPECT_EQ(o.code, 1) << o.out;
}

// Issue 33, finding 3: a recorded loop's own checkpoints are its checkpoints: listed as a
// format Lockstep does not know, with no problem; an empty one is named.
TEST(RealLayouts, AScriptsOwnCheckpointsAreListedNotCalledIncomplete) {
  test::ScratchDir dir;
  const std::string run = dir.Join("run");
  for (const char* c : {"/checkpoint-10", "/checkpoint-20"}) {
    fs::create_directories(run + c);
    fs::copy_file(std::string(LOCKSTEP_FIXTURES_DIR) + "/torch/model.pt", run + c + "/state.pt");
  }
  AuditReport r = test::Audit(run, /*verify=*/true);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  EXPECT_EQ(test::Find(r, 20).layout, "own");
  EXPECT_EQ(test::Find(r, 20).status, "not checked");
  EXPECT_TRUE(Mentions(r.notes, "script's own format")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.not_checked(), 2u);
  EXPECT_TRUE(AuditReportJson(r)["latest_resumable"].is_null());
  const auto text = test::RunCommand(std::string(LOCKSTEP_BIN) + " inspect " + run);
  EXPECT_EQ(text.code, 0) << text.out;
  EXPECT_NE(text.out.find("not known (checkpoints in no layout Lockstep knows)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("not judged: 2 checkpoints in no layout Lockstep knows"), std::string::npos) << text.out;
  fs::remove(run + "/checkpoint-10/state.pt");
  r = test::Audit(run);
  EXPECT_TRUE(Mentions(test::Find(r, 10).problems, "checkpoint-10: holds no files")) << AuditReportJson(r).dump(2);
}

// The new-user trial: a Trainer checkpoint renamed by hand (checkpoint-4 moved to
// checkpoint-7) is named: its trainer_state.json says step 4, and a resume continues there.
TEST(RealLayouts, ATrainerCheckpointNamedForAnotherStepIsNamed) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "hf_full_run");
  AuditReport r = test::Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  fs::rename(run + "/checkpoint-4", run + "/checkpoint-7");
  r = test::Audit(run);
  EXPECT_FALSE(r.healthy());
  EXPECT_TRUE(Mentions(test::Find(r, 7).problems,
                       "checkpoint-7/trainer_state.json: global_step 4, but the folder is named for step 7"))
      << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "checkpoint-2");
}

// The new-user trial: a file of a format Lockstep reads is checked in a checkpoint of no
// known layout too (a cut safetensors was "not checked", healthy), and a save of one series
// of names that lacks what its siblings hold is incomplete whatever its layout seems
// (accelerate's checkpoint_2 holding only model.safetensors beside whole ones was healthy).
TEST(RealLayouts, AnUnknownLayoutsKnownFilesAreCheckedAndASeriesIsOneGroup) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "hf_full_run");
  const std::string weights = run + "/checkpoint-2/model.safetensors";
  ASSERT_TRUE(fs::exists(weights));
  const std::string own = dir.Join("own/checkpoints");
  for (const char* c : {"/checkpoint_0", "/checkpoint_1", "/checkpoint_2"}) {
    fs::create_directories(own + c);
    fs::copy_file(weights, own + c + "/model.safetensors");
  }
  for (const char* c : {"/checkpoint_0", "/checkpoint_1"}) {
    fs::copy_file(std::string(LOCKSTEP_FIXTURES_DIR) + "/torch/model.pt", own + c + "/optimizer.bin");
  }
  AuditReport r = test::Audit(dir.Join("own"));
  ASSERT_EQ(r.checkpoints.size(), 3u) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.checkpoints[2].status, "incomplete") << AuditReportJson(r).dump(2);
  EXPECT_TRUE(Mentions(r.checkpoints[2].problems, "checkpoint_2/optimizer.bin: missing (every other checkpoint"))
      << AuditReportJson(r).dump(2);
  test::ShrinkFile(own + "/checkpoint_0/model.safetensors", 100);
  r = test::Audit(dir.Join("own"));
  EXPECT_EQ(r.checkpoints[0].status, "corrupt") << AuditReportJson(r).dump(2);
  EXPECT_TRUE(Mentions(r.checkpoints[0].problems, "checkpoint_0/model.safetensors")) << AuditReportJson(r).dump(2);
}

// Issue 33, finding 9: a pickle that would run code when loaded is a problem in the text
// output too, naming the call (it was listed only under --json's globals).
TEST(RealLayouts, APickleThatWouldRunCodeIsAProblem) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "hf_full_run");
  const std::string args = run + "/checkpoint-4/training_args.bin";
  fs::remove(args);
  const auto made = test::RunCommand("python3 -c \"import zipfile; z = zipfile.ZipFile('" + args +
                                     "', 'w'); z.writestr('archive/data.pkl', b'cposix\\nsystem\\n(S\\'id\\'\\ntR.'); "
                                     "z.close()\"");
  ASSERT_EQ(made.code, 0) << made.out;
  const auto o = Lockstep("inspect " + run);
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("training_args.bin: its pickle calls posix.system when loaded"), std::string::npos) << o.out;
}

}  // namespace
}  // namespace lockstep
