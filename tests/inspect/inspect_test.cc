// inspect on Lockstep runs: healthy, incomplete, corrupt, rotated and damaged runs,
// --verify progress, and show of checkpoints with bit flips and truncations. This binary
// does not link LibTorch: runs are made by the lockstep binary.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

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
  fs::remove(run + "/checkpoint-16/manifest.json");          // a save that never committed
  test::FlipByte(run + "/checkpoint-8/model.h5", -20);       // same size: only --verify sees it
  test::ShrinkFile(run + "/checkpoint-4/optimizer.h5", 10);  // a size mismatch: always seen
  fs::create_directory(run + "/.staging-checkpoint-20-123");
  fs::create_directory(run + "/.deleting-checkpoint-2-123");  // a rotation cut short
  AuditReport cheap = Audit(run);
  EXPECT_EQ(Find(cheap, 16).status, "incomplete");
  EXPECT_EQ(Find(cheap, 4).status, "corrupt");
  EXPECT_EQ(Find(cheap, 8).status, "complete");
  EXPECT_EQ(Find(cheap, 12).status, "complete");
  EXPECT_EQ(cheap.latest_resumable, "checkpoint-12");
  bool staging = false;
  bool deleting = false;
  for (const auto& p : cheap.problems) {
    staging |= p.find(".staging-checkpoint-20-123: leftover") != std::string::npos;
    deleting |= p.find(".deleting-checkpoint-2-123: leftover of a checkpoint delete") != std::string::npos;
  }
  EXPECT_TRUE(staging);
  EXPECT_TRUE(deleting) << AuditReportJson(cheap).dump(2);
  AuditReport verified = Audit(run, true);
  EXPECT_EQ(Find(verified, 8).status, "corrupt");
  EXPECT_NE(Find(verified, 8).problems.at(0).find("model.h5: checksum"), std::string::npos)
      << Find(verified, 8).problems.at(0);
}

TEST(LockstepAudit, RotationHoldsAndAViolationIsNamed) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"), "--save_total_limit 2");
  AuditReport r = Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.checkpoints.size(), 2u);
  // Rotation missed one: the same run without a limit still has its checkpoint-4.
  const std::string unrotated = Train(dir.Join("unrotated"));
  ASSERT_TRUE(CopyTree(unrotated + "/checkpoint-4", run + "/checkpoint-4").ok());
  r = Audit(run);
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(r.findings["rotation"]["holds"], false);
}

// Finding 7 of issue 10: the manifest, not the directory name, says which step it is.
TEST(LockstepAudit, RenamedCheckpointIsCorruptNamingBothSteps) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  ASSERT_EQ(::rename((run + "/checkpoint-8").c_str(), (run + "/checkpoint-10").c_str()), 0);
  const AuditReport r = Audit(run);
  EXPECT_FALSE(r.healthy());
  const CheckpointAudit& renamed = Find(r, 10);
  EXPECT_EQ(renamed.status, "corrupt");
  ASSERT_FALSE(renamed.problems.empty());
  EXPECT_NE(renamed.problems[0].find("records step 8 but the directory is named checkpoint-10"), std::string::npos)
      << renamed.problems[0];
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

TEST(LockstepAudit, VerifyProgressCoversTheWholeRunInChunks) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"), "", /*hidden_size=*/512);  // model.h5 > one 256 KiB chunk
  fs::remove(run + "/checkpoint-16/manifest.json");                         // incomplete: not verified, not counted
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
  EXPECT_EQ(total, verified);                // known before the first byte was read
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
  // The command's audit of that checkpoint says corrupt beside the mismatch, never complete.
  const auto shown = test::RunCommand(std::string(LOCKSTEP_BIN) + " inspect " + run + "/checkpoint-16");
  EXPECT_EQ(shown.code, 1) << shown.out;
  EXPECT_NE(shown.out.find("audit: corrupt"), std::string::npos) << shown.out;
  EXPECT_EQ(shown.out.find("audit: complete"), std::string::npos) << shown.out;
  // A flipped bit in HDF5's own metadata (the superblock signature) of a file shown on
  // its own: unreadable input naming the file, no crash.
  fs::copy_file(run + "/checkpoint-12/model.h5", dir.Join("alone.h5"));
  test::FlipByte(dir.Join("alone.h5"), 1);
  const Status st = ShowPath(dir.Join("alone.h5"), ShowOptions(), &r);
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("alone.h5"), std::string::npos) << st.message();
  EXPECT_TRUE(r["tensors"].empty());
}

// Issue 10: inspect on something that is not a run, or on a truncated file, exits 2 saying so.
TEST(LockstepShow, NotARunAndATruncatedFileAreUnreadableInput) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("notes.txt"), "not a run");
  AuditReport r;
  const Status st = AuditRun(dir.path(), AuditOptions(), &r);
  ASSERT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_NE(st.message().find("not a run directory"), std::string::npos) << st.message();
  const std::string run = Train(dir.Join("run"));
  fs::copy_file(run + "/checkpoint-4/model.h5", dir.Join("cut.h5"));
  test::ShrinkFile(dir.Join("cut.h5"), 500);
  const auto o = test::RunCommand(std::string(LOCKSTEP_BIN) + " inspect " + dir.Join("cut.h5"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("lockstep inspect: " + dir.Join("cut.h5")), std::string::npos) << o.out;
  const auto n = test::RunCommand(std::string(LOCKSTEP_BIN) + " inspect " + dir.path() + " --json");
  EXPECT_EQ(n.code, 2) << n.out;
  EXPECT_NE(n.out.find("\"code\": \"invalid_argument\""), std::string::npos) << n.out;
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

// Issue 33, the new-user trial: a flag for another kind of path, or a tensor the file does
// not hold, is bad usage (exit 2 naming it), never a report that ignores it or "problems found".
TEST(LockstepShow, AFlagForAnotherKindOfPathOrAnAbsentTensorIsBadUsage) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  const std::string bin = std::string(LOCKSTEP_BIN) + " inspect ";
  const std::pair<std::string, std::string> cases[] = {
      {run + " --steps 5:3", "--steps does not apply to " + run + ", a directory audited as a run"},
      {run + " --tensor fc1.bias", "--tensor does not apply to " + run},
      {run + "/checkpoint-16 --fields loss", "--fields does not apply to " + run + "/checkpoint-16, not a step log"},
      {run + "/steps.jsonl.zst --filter fc1", "--filter does not apply to " + run + "/steps.jsonl.zst, a step log"},
      {run + "/checkpoint-16 --tensor nosuch", run + "/checkpoint-16: no tensor named 'nosuch'"},
  };
  for (const auto& [args, expected] : cases) {
    const auto o = test::RunCommand(bin + args);
    EXPECT_EQ(o.code, 2) << args << ": " << o.out;
    EXPECT_NE(o.out.find(expected), std::string::npos) << args << ": " << o.out;
  }
  EXPECT_EQ(test::RunCommand(bin + run + "/steps.jsonl.zst --steps 1:2").code, 0);
  EXPECT_EQ(test::RunCommand(bin + run + "/checkpoint-16 --tensor fc1.bias").code, 0);
}

// Issue 33, finding 9: a resume made with --fault-inject (a deliberately broken resume, for
// testing) is a problem, not a healthy run.
TEST(LockstepAudit, AResumeMadeWithAnInjectedFaultIsAProblem) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"), "--stop-after-step 8");
  Train(run, "--resume --fault-inject rng");
  const AuditReport r = Audit(run);
  EXPECT_FALSE(r.healthy());
  EXPECT_TRUE(Mentions(r.problems, "the resume after step 8 was made with --fault-inject rng"))
      << AuditReportJson(r).dump(2);
}

}  // namespace lockstep
