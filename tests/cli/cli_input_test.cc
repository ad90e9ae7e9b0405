// Inputs a command cannot use are bad input (exit 2) named in Lockstep's words, never an
// abort and never a "check failed" (1): an unreadable directory or file (issue 21, findings
// 10 and 14), another run's checkpoint given to replay (finding 13).
#include <string>

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace lockstep {
namespace {

const std::string kBin = LOCKSTEP_BIN;

// Root reads everything: the unreadable cases run as nobody, with a copy of the torch-free
// binary in a directory nobody may enter.
class AsNobody {
 public:
  AsNobody() {
    EXPECT_EQ(test::RunCommand("chmod 755 " + dir_.path() + " && cp " + kBin + " " + dir_.Join("lockstep")).code, 0);
  }
  const test::ScratchDir& dir() const { return dir_; }
  test::CommandOutput Run(const std::string& args) const {
    return test::RunCommand("cd " + dir_.path() + " && runuser -u nobody -- ./lockstep " + args);
  }

 private:
  test::ScratchDir dir_;
};

void Train(const std::string& dir, const std::string& extra = "") {
  const auto o = test::RunCommand(kBin + " train --output_dir " + dir +
                                  " --max_steps 20 --save_steps 10 --train_samples 64 --quiet" + extra);
  ASSERT_EQ(o.code, 0) << o.out;
}

TEST(UnreadableInput, ACheckpointNobodyMayReadIsNamedAndExitsTwo) {
  AsNobody nobody;
  Train(nobody.dir().Join("run"));
  ASSERT_EQ(test::RunCommand("chmod -R a+rX " + nobody.dir().Join("run") + " && chmod 000 " +
                             nobody.dir().Join("run/checkpoint-20"))
                .code,
            0);
  for (const std::string& args : {"inspect run", "inspect run --json", "diff run run", "inspect run/checkpoint-20",
                                  "diff run/checkpoint-20 run/checkpoint-10"}) {
    const auto o = nobody.Run(args);
    EXPECT_EQ(o.code, 2) << args << "\n" << o.out;
    EXPECT_NE(o.out.find("checkpoint-20"), std::string::npos) << args << "\n" << o.out;
    EXPECT_NE(o.out.find("Permission denied"), std::string::npos) << args << "\n" << o.out;
  }
}

// Issue 21, finding 15: an unreadable model.h5 was "truncated or damaged", and the cheap
// audit called a run healthy whose checkpoint this user could not read.
TEST(UnreadableInput, AFileNobodyMayReadIsUnreadableNeverDamagedNorHealthy) {
  AsNobody nobody;
  Train(nobody.dir().Join("run"));
  ASSERT_EQ(test::RunCommand("chmod -R a+rX " + nobody.dir().Join("run") + " && chmod 000 " +
                             nobody.dir().Join("run/checkpoint-20/model.h5"))
                .code,
            0);
  auto o = nobody.Run("diff run/checkpoint-20 run/checkpoint-10");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("model.h5: cannot open: Permission denied"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("damaged"), std::string::npos) << o.out;
  o = nobody.Run("inspect run");
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("unreadable"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("checkpoint-20/model.h5: cannot read: Permission denied"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("\nhealthy"), std::string::npos) << o.out;
}

TEST(UnreadableInput, ASymbolicLinkLoopIsNamedAsOne) {
  test::ScratchDir dir;
  ASSERT_EQ(test::RunCommand("cd " + dir.path() + " && ln -s b a && ln -s a b").code, 0);
  for (const std::string& args : {"inspect " + dir.Join("a"), "diff " + dir.Join("a") + " " + dir.Join("b")}) {
    const auto o = test::RunCommand(kBin + " " + args);
    EXPECT_EQ(o.code, 2) << o.out;
    EXPECT_NE(o.out.find("a loop of symbolic links"), std::string::npos) << o.out;
  }
}

TEST(UnreadableInput, BenchCompareOnAFileNobodyMayReadExitsTwo) {
  AsNobody nobody;
  test::WriteAll(nobody.dir().Join("base.json"), "{\"benchmarks\": []}");
  ASSERT_EQ(test::RunCommand("chmod 000 " + nobody.dir().Join("base.json")).code, 0);
  const auto o = nobody.Run("bench compare base.json base.json");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("base.json"), std::string::npos) << o.out;
}

TEST(ReplayInput, AnotherRunsCheckpointIsNamedAsSuch) {
  test::ScratchDir dir;
  Train(dir.Join("a"));
  Train(dir.Join("b"), " --seed 7");
  const auto o =
      test::RunCommand(kBin + " replay " + dir.Join("a") + " --from " + dir.Join("b/checkpoint-10") + " --steps 2");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("is another run's checkpoint"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("--resume-override"), std::string::npos) << o.out;  // no advice to cut a sound log
  EXPECT_EQ(test::RunCommand(kBin + " replay " + dir.Join("a") + " --from checkpoint-10 --steps 2").code, 0);
}

// A path that does not exist is said not to exist, not misnamed as something else there.
TEST(ReplayInput, AMissingRunOrCheckpointIsNamedAsMissing) {
  test::ScratchDir dir;
  Train(dir.Join("a"));
  struct Case {
    std::string args, says;
  };
  for (const Case& c :
       {Case{"replay " + dir.Join("nope") + " --from checkpoint-10", "nope: no such run directory"},
        Case{"replay " + dir.Join("a") + " --from checkpoint-99", "checkpoint-99: no such checkpoint directory"},
        Case{"train --output_dir " + dir.Join("a") + " --resume " + dir.Join("a/checkpoint-99"),
             "checkpoint-99: no such checkpoint directory"}}) {
    const auto o = test::RunCommand(kBin + " " + c.args);
    EXPECT_EQ(o.code, 2) << c.args << "\n" << o.out;
    EXPECT_NE(o.out.find(c.says), std::string::npos) << c.args << "\n" << o.out;
    EXPECT_EQ(o.out.find("never committed"), std::string::npos) << c.args << "\n" << o.out;
  }
}

TEST(ReplayInput, ATraceIntoADirectoryIsBadUsageFoundBeforeAnyStep) {
  test::ScratchDir dir;
  Train(dir.Join("a"));
  auto o = test::RunCommand(kBin + " replay " + dir.Join("a") + " --from checkpoint-10 --trace-modules " + dir.path());
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("is a directory"), std::string::npos) << o.out;
  o = test::RunCommand(kBin + " replay " + dir.Join("a") + " --from checkpoint-10 --trace-modules " +
                       dir.Join("no/t.json"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("no directory"), std::string::npos) << o.out;
}

}  // namespace
}  // namespace lockstep
