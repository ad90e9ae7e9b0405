// A full disk (issue 10, finding 2), for real: a 300 KiB tmpfs as output_dir fills during a
// checkpoint save. The run exits 1 naming the file and ENOSPC, never crashes (HDF5 used to
// segfault at exit on a handle left open), leaves no staging directory, and every
// checkpoint it committed before still verifies. Needs root for the mount.
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "inspect/audit.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

class FullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
    ASSERT_EQ(::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=300k"), 0) << "mount failed";
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount(dir_.path().c_str());
  }
  test::ScratchDir dir_;
  bool mounted_ = false;
};

// Writes `path` until its disk is full.
void FillDisk(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  const std::string block(4096, 'x');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size() && std::fflush(f) == 0) {
  }
  std::fclose(f);
}

// Trains into the full disk with `extra` flags and checks the failure and what is left.
void ExpectFullDiskFailsCleanly(const std::string& run, const std::string& extra) {
  const auto o =
      test::RunCommand(std::string(LOCKSTEP_BIN) + " train --quiet --save_steps 100 --output_dir " + run + extra);
  EXPECT_EQ(o.code, 1) << o.out;  // a failure of the work, not a crash (139) or bad usage
  EXPECT_NE(o.out.find("No space left on device"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find(run + "/"), std::string::npos) << o.out;  // names the file
  AuditOptions verify;
  verify.verify = true;
  AuditReport audit;
  ASSERT_OK(AuditRun(run, verify, &audit));
  EXPECT_TRUE(audit.healthy()) << AuditReportJson(audit).dump(2);  // no leftover, nothing corrupt
  EXPECT_FALSE(audit.checkpoints.empty());
}

TEST_F(FullDisk, ASaveThatFillsTheDiskExitsOneAndKeepsEveryCommittedCheckpoint) {
  ExpectFullDiskFailsCleanly(dir_.Join("run"), "");
}

// The same with the save in the background: its error reaches the training thread, which
// fails the run the same way.
TEST_F(FullDisk, ABackgroundSaveThatFillsTheDiskFailsTheRunTheSameWay) {
  ExpectFullDiskFailsCleanly(dir_.Join("run"), " --save_async true");
}

// `lockstep replay` continues a scratch copy of the step log under TMPDIR: when that disk is
// full, the error says so (not a damaged run), exits 1, and the run directory is untouched.
TEST_F(FullDisk, AReplayWhoseScratchDiskIsFullSaysSoAndLeavesTheRunAlone) {
  test::ScratchDir elsewhere;
  const std::string run = elsewhere.Join("run");
  ASSERT_EQ(
      test::RunCommand(std::string(LOCKSTEP_BIN) + " train --quiet --max_steps 20 --save_steps 10 --output_dir " + run)
          .code,
      0);
  const std::string before = test::ReadAll(run + "/steps.jsonl.zst");
  FillDisk(dir_.Join("filler"));
  const auto o = test::RunCommand("TMPDIR=" + dir_.path() + " " + LOCKSTEP_BIN + " replay " + run +
                                  " --from checkpoint-10 --steps 2");
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("replay's scratch copy under " + dir_.path()), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("No space left on device"), std::string::npos) << o.out;
  EXPECT_EQ(test::ReadAll(run + "/steps.jsonl.zst"), before);
}

}  // namespace
}  // namespace lockstep
