#include "formats/checkpoint.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "formats/json_file.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

Status CommitCheckpoint(const std::string& run, int64_t step, const std::string& payload,
                        std::string* final_dir = nullptr) {
  std::unique_ptr<CheckpointStaging> s;
  LOCKSTEP_RETURN_IF_ERROR(CheckpointStaging::Begin(run, step, &s));
  test::WriteAll(s->FilePath("weights.bin"), payload);
  test::WriteAll(s->FilePath("state.json"), "{\"step\": " + std::to_string(step) + "}");
  return s->Commit(final_dir);
}

}  // namespace

TEST(Checkpoint, CommitWritesManifestAndValidates) {
  test::ScratchDir run;
  std::string dir;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 7, "abcdef", &dir).ok());
  EXPECT_EQ(dir, run.Join("checkpoint-7"));
  Manifest m;
  Status st = ValidateCheckpoint(dir, VerifyMode::kChecksums, &m);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(m.global_step, 7);
  ASSERT_EQ(m.files.size(), 2u);
  EXPECT_EQ(m.files[0].path, "state.json");
  EXPECT_EQ(m.files[1].content.size, 6u);
  // No staging directory is left behind.
  for (const auto& e : fs::directory_iterator(run.path())) EXPECT_EQ(e.path().filename(), "checkpoint-7");
}

TEST(Checkpoint, AbandonedStagingLeavesNothing) {
  test::ScratchDir run;
  {
    std::unique_ptr<CheckpointStaging> s;
    ASSERT_TRUE(CheckpointStaging::Begin(run.path(), 3, &s).ok());
    test::WriteAll(s->FilePath("weights.bin"), "partial");
  }
  EXPECT_TRUE(fs::is_empty(run.path()));
}

// A process killed in the middle of a save (here: it exits before Commit, as SIGKILL would)
// leaves a staging directory, which is never taken for a checkpoint.
TEST(Checkpoint, SaveInterruptedBeforeCommitLeavesNoValidCheckpoint) {
  test::ScratchDir run;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 5, "good").ok());
  const pid_t pid = fork();
  if (pid == 0) {
    std::unique_ptr<CheckpointStaging> s;
    if (!CheckpointStaging::Begin(run.path(), 10, &s).ok()) _exit(3);
    test::WriteAll(s->FilePath("weights.bin"), std::string(1 << 20, 'x'));
    _exit(0);  // dies before the manifest: no destructor runs, as with a kill
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::vector<CheckpointDir> dirs;
  ASSERT_TRUE(ListCheckpointDirs(run.path(), &dirs).ok());
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].step, 5);
  EXPECT_TRUE(ValidateCheckpoint(dirs[0].path, VerifyMode::kChecksums).ok());
}

TEST(Checkpoint, DirectoryWithoutManifestIsIncomplete) {
  test::ScratchDir run;
  fs::create_directory(run.Join("checkpoint-9"));
  test::WriteAll(run.Join("checkpoint-9/model.h5"), "half written");
  Status st = ValidateCheckpoint(run.Join("checkpoint-9"), VerifyMode::kSizes);
  ASSERT_TRUE(st.IsNotFound()) << st.ToString();  // incomplete, as the audit branches on
  EXPECT_NE(st.message().find("incomplete"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("checkpoint-9"), std::string::npos);
}

// A path that is no directory is said to be that, never called a save that did not commit.
TEST(Checkpoint, AMissingDirectoryOrAFileIsNamedAsSuch) {
  test::ScratchDir run;
  Status st = ValidateCheckpoint(run.Join("checkpoint-99"), VerifyMode::kSizes);
  ASSERT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find("checkpoint-99: no such checkpoint directory"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("incomplete"), std::string::npos) << st.message();
  test::WriteAll(run.Join("checkpoint-7"), "a file");
  st = ValidateCheckpoint(run.Join("checkpoint-7"), VerifyMode::kSizes);
  ASSERT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find("checkpoint-7: not a directory"), std::string::npos) << st.message();
}

TEST(Checkpoint, SizeAndChecksumMismatchesAreNamed) {
  test::ScratchDir run;
  std::string dir;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 1, "0123456789", &dir).ok());
  test::FlipByte(dir + "/weights.bin", 3);
  EXPECT_TRUE(ValidateCheckpoint(dir, VerifyMode::kSizes).ok());  // cheap mode sees sizes only
  Status st = ValidateCheckpoint(dir, VerifyMode::kChecksums);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("weights.bin: checksum"), std::string::npos) << st.message();
  test::ShrinkFile(dir + "/weights.bin", 2);
  st = ValidateCheckpoint(dir, VerifyMode::kSizes);
  EXPECT_NE(st.message().find("size 8 but the manifest says 10"), std::string::npos) << st.message();
  fs::remove(dir + "/weights.bin");
  st = ValidateCheckpoint(dir, VerifyMode::kSizes);
  EXPECT_NE(st.message().find("missing"), std::string::npos) << st.message();
}

TEST(Checkpoint, ManifestNamingFilesOutsideIsCorruption) {
  test::ScratchDir run;
  std::string dir;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 2, "x", &dir).ok());
  nlohmann::json m;
  ASSERT_TRUE(ReadJsonFile(dir + "/manifest.json", &m).ok());
  m["files"][0]["path"] = "../../etc/passwd";
  ASSERT_TRUE(WriteJsonFile(dir + "/manifest.json", m).ok());
  Status st = ValidateCheckpoint(dir, VerifyMode::kSizes);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("outside the checkpoint"), std::string::npos) << st.message();
}

TEST(Checkpoint, ManifestOfAnotherVersionIsRefusedWithHelp) {
  test::ScratchDir run;
  std::string dir;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 2, "x", &dir).ok());
  nlohmann::json m;
  ASSERT_TRUE(ReadJsonFile(dir + "/manifest.json", &m).ok());
  m["format_version"] = 99;
  ASSERT_TRUE(WriteJsonFile(dir + "/manifest.json", m).ok());
  Status st = ValidateCheckpoint(dir, VerifyMode::kSizes);
  EXPECT_NE(st.message().find("version 99 is not supported"), std::string::npos) << st.message();
}

TEST(Checkpoint, RecommitReplacesTheOldSaveAtomically) {
  test::ScratchDir run;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 4, "old").ok());
  std::string dir;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 4, "newer", &dir).ok());
  EXPECT_EQ(test::ReadAll(dir + "/weights.bin"), "newer");
  EXPECT_TRUE(ValidateCheckpoint(dir, VerifyMode::kChecksums).ok());
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(run.path())) entries += e.is_directory();
  EXPECT_EQ(entries, 1u);
}

TEST(Checkpoint, ListsByStepNumberNotName) {
  test::ScratchDir run;
  for (const char* d : {"checkpoint-10", "checkpoint-9", "checkpoint-100", "checkpoint-x", "ckpt-3", "checkpoint-"}) {
    fs::create_directory(run.Join(d));
  }
  std::vector<CheckpointDir> dirs;
  ASSERT_TRUE(ListCheckpointDirs(run.path(), &dirs).ok());
  ASSERT_EQ(dirs.size(), 3u);
  EXPECT_EQ(dirs[0].step, 9);
  EXPECT_EQ(dirs[1].step, 10);
  EXPECT_EQ(dirs[2].step, 100);
}

}  // namespace lockstep

namespace lockstep {

TEST(Checkpoint, LatestValidSkipsHalfWrittenAndCorruptOnesWithReasons) {
  test::ScratchDir run;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 4, "four").ok());
  ASSERT_TRUE(CommitCheckpoint(run.path(), 8, "eight").ok());
  std::string corrupt;
  ASSERT_TRUE(CommitCheckpoint(run.path(), 12, "twelve", &corrupt).ok());
  test::FlipByte(corrupt + "/weights.bin", 0);
  fs::create_directory(run.Join("checkpoint-16"));  // half-written: no manifest
  CheckpointDir latest;
  std::vector<SkippedCheckpoint> skipped;
  ASSERT_TRUE(FindLatestValidCheckpoint(run.path(), VerifyMode::kChecksums, &latest, &skipped).ok());
  EXPECT_EQ(latest.step, 8);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_NE(skipped[0].reason.find("incomplete"), std::string::npos) << skipped[0].reason;
  EXPECT_NE(skipped[1].reason.find("checksum"), std::string::npos) << skipped[1].reason;
}

TEST(Checkpoint, NoValidCheckpointIsNotFound) {
  test::ScratchDir run;
  CheckpointDir latest;
  std::vector<SkippedCheckpoint> skipped;
  Status st = FindLatestValidCheckpoint(run.path(), VerifyMode::kSizes, &latest, &skipped);
  EXPECT_TRUE(st.IsNotFound());
  EXPECT_NE(st.message().find("no valid checkpoint"), std::string::npos);
}

}  // namespace lockstep
