// process/: verify-resume's children, exec'd or forked from the parent (the zygote, LibTorch
// already loaded), which must look the same from the parent (stdout to its file, events on
// the pipe, the exit code, a SIGKILL seen as a signal); Spawn; the job environment.
#include "process/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "process/job_env.h"
#include "process/spawn.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

int ForkedMain(const std::vector<std::string>& argv) {
  std::printf("{\"args\": %zu}\n", argv.size());  // buffered: the exit must flush it
  const std::string event = "step 7\n";
  if (::write(ChildProcess::kEventFd, event.data(), event.size()) < 0) return 9;
  return argv.size() > 1 && argv[1] == "hang" ? (::pause(), 0) : 3;
}

TEST(ChildProcess, AForkedChildReportsLikeAnExecedOne) {
  test::ScratchDir dir;
  std::unique_ptr<ChildProcess> child;
  ASSERT_OK(
      ChildProcess::Start({"lockstep-train", "train"}, dir.Join("out.json"), dir.Join("err.txt"), &child, ForkedMain));
  std::string name;
  int64_t step = 0;
  ASSERT_EQ(child->NextEvent(10, &name, &step), ChildProcess::Next::kEvent);
  EXPECT_EQ(name, "step");
  EXPECT_EQ(step, 7);
  EXPECT_EQ(child->NextEvent(10, &name, &step), ChildProcess::Next::kEnd);
  int code = 0, signal = 0;
  ASSERT_OK(child->Wait(&code, &signal));
  EXPECT_EQ(code, 3);
  EXPECT_EQ(signal, 0);
  EXPECT_EQ(test::ReadAll(dir.Join("out.json")), "{\"args\": 2}\n");
}

TEST(ChildProcess, AForkedChildCanBeKilled) {
  test::ScratchDir dir;
  std::unique_ptr<ChildProcess> child;
  ASSERT_OK(
      ChildProcess::Start({"lockstep-train", "hang"}, dir.Join("out.json"), dir.Join("err.txt"), &child, ForkedMain));
  std::string name;
  int64_t step = 0;
  ASSERT_EQ(child->NextEvent(10, &name, &step), ChildProcess::Next::kEvent);
  child->Kill();
  int code = 0, signal = 0;
  ASSERT_OK(child->Wait(&code, &signal));
  EXPECT_EQ(code, -1);
  EXPECT_EQ(signal, SIGKILL);
}

// A launcher (here sh) whose workers ignore SIGTERM and outlive it, as torchrun's may: the
// signal reaches the whole group, and EndGroup leaves none of it alive. A child without a
// group of its own keeps the old behaviour: only it is signalled.
TEST(ChildProcess, AGroupIsSignalledWholeAndNoneOfItOutlivesEndGroup) {
  test::ScratchDir dir;
  const std::string script = "trap '' TERM; (trap '' TERM; exec sleep 100) & echo $! > " + dir.Join("worker") +
                             "; (exec sleep 100) & echo $! >> " + dir.Join("worker") + "; echo up >&3; wait";
  for (const bool own_group : {true, false}) {
    std::unique_ptr<ChildProcess> child;
    ASSERT_OK(ChildProcess::Start({"/bin/sh", "-c", script}, dir.Join("out"), dir.Join("err"), &child, {}, own_group));
    std::string name;
    int64_t step = 0;
    ASSERT_EQ(child->NextEvent(10, &name, &step), ChildProcess::Next::kEvent);
    std::vector<pid_t> workers;
    std::istringstream pids(test::ReadAll(dir.Join("worker")));
    for (int pid = 0; pids >> pid;) workers.push_back(pid);
    ASSERT_EQ(workers.size(), 2u);
    child->Signal(SIGKILL);
    int code = 0, signal = 0;
    ASSERT_OK(child->Wait(&code, &signal));
    EXPECT_EQ(signal, SIGKILL);
    std::vector<pid_t> survivors;
    ASSERT_OK(child->EndGroup(5, &survivors));
    for (pid_t w : workers) {
      // A worker of the group is gone (a zombie at most, until init reaps it).
      const std::string stat = test::ReadAll("/proc/" + std::to_string(w) + "/stat");
      const bool alive = !stat.empty() && stat.substr(stat.rfind(')') + 2, 1) != "Z";
      EXPECT_EQ(alive, !own_group) << "worker " << w << (own_group ? " outlived its group" : " was signalled");
      if (alive) ::kill(w, SIGKILL);
    }
  }
}

TEST(ChildProcess, AnExecThatCannotStartIsAnError) {
  test::ScratchDir dir;
  std::unique_ptr<ChildProcess> child;
  const Status st = ChildProcess::Start({dir.Join("no-such-binary")}, dir.Join("o"), dir.Join("e"), &child);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no-such-binary"), std::string::npos) << st.ToString();
}

// Spawn and the job environment (process/spawn.h, process/job_env.h).

TEST(Spawn, TheChildGetsItsDescriptorsEnvironmentAndProcessGroup) {
  test::ScratchDir dir;
  SpawnOptions o;
  o.Open(STDOUT_FILENO, dir.Join("out"), O_WRONLY | O_CREAT | O_TRUNC).Dup(STDERR_FILENO, STDOUT_FILENO);
  o.env = {{"LOCKSTEP_SPAWN_TEST", "set by the parent"}, {"HOME", "/nowhere"}};
  o.own_process_group = true;
  o.search_path = true;  // "sh", found in PATH
  pid_t pid = 0;
  ASSERT_TRUE(Spawn({"sh", "-c",
                     "echo \"$LOCKSTEP_SPAWN_TEST $HOME\"; echo to-stderr >&2; "
                     "cut -d' ' -f5 /proc/$$/stat; exit 3"},
                    o, &pid)
                  .ok());
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(test::ReadAll(dir.Join("out")),
            "set by the parent /nowhere\nto-stderr\n" + std::to_string(pid) + "\n");  // its own group
}

TEST(Spawn, AnExecutableThatCannotRunIsNotFoundNamingIt) {
  test::ScratchDir dir;
  pid_t pid = 0;
  Status st = Spawn({dir.Join("absent")}, SpawnOptions(), &pid);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_NE(st.message().find(dir.Join("absent")), std::string::npos) << st.ToString();
  SpawnOptions bad_file;
  bad_file.Open(STDOUT_FILENO, dir.Join("no/such/dir/out"), O_WRONLY | O_CREAT);
  EXPECT_FALSE(Spawn({"/bin/true"}, bad_file, &pid).ok());
  EXPECT_EQ(SpawnAndWait({dir.Join("absent")}, SpawnOptions()), -1);
  EXPECT_EQ(SpawnAndWait({"/bin/sh", "-c", "exit 5"}, SpawnOptions()), 5);
}

// Sets the job variables for one test and restores them after.
class JobEnvTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* v : {kRankVar, kLocalRankVar, kWorldSizeVar, kMasterAddrVar, kMasterPortVar}) ::unsetenv(v);
  }
};

TEST_F(JobEnvTest, NoVariablesIsOneProcessAndBadOnesAreNamed) {
  JobEnv env;
  ASSERT_TRUE(ReadJobEnv(&env).ok());
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_FALSE(IsRankOfJob());
  EXPECT_EQ(RankOfThisProcess(), 0);
  ::setenv(kWorldSizeVar, "2", 1);
  ::setenv(kRankVar, "1", 1);
  Status st = ReadJobEnv(&env);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("without MASTER_ADDR"), std::string::npos) << st.ToString();
  ::setenv(kMasterAddrVar, "10.0.0.1", 1);
  ASSERT_TRUE(ReadJobEnv(&env).ok());
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.local_rank, 1);  // LOCAL_RANK defaults to RANK
  EXPECT_EQ(env.master_addr, "10.0.0.1");
  EXPECT_TRUE(IsRankOfJob());
  EXPECT_EQ(RankOfThisProcess(), 1);
  ::setenv(kRankVar, "2", 1);
  EXPECT_NE(ReadJobEnv(&env).message().find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos);
  ::setenv(kRankVar, "one", 1);
  EXPECT_NE(ReadJobEnv(&env).message().find("RANK=one"), std::string::npos);
}

TEST_F(JobEnvTest, ALocalRankGetsTorchrunsVariablesAndOneThreadUnlessTold) {
  const char* omp = std::getenv("OMP_NUM_THREADS");
  const std::string saved = omp ? omp : "";
  ::unsetenv("OMP_NUM_THREADS");
  auto env = LocalRankEnv(1, 4, "29511");
  const auto value = [&env](const std::string& name) {
    for (const auto& [k, v] : env)
      if (k == name) return v;
    return std::string("(unset)");
  };
  EXPECT_EQ(value(kRankVar), "1");
  EXPECT_EQ(value(kLocalRankVar), "1");
  EXPECT_EQ(value(kWorldSizeVar), "4");
  EXPECT_EQ(value(kLocalWorldSizeVar), "4");
  EXPECT_EQ(value(kMasterPortVar), "29511");
  EXPECT_EQ(value("OMP_NUM_THREADS"), "1");
  ::setenv("OMP_NUM_THREADS", "3", 1);
  env = LocalRankEnv(0, 2, "1");
  EXPECT_EQ(value("OMP_NUM_THREADS"), "3");
  if (omp)
    ::setenv("OMP_NUM_THREADS", saved.c_str(), 1);
  else
    ::unsetenv("OMP_NUM_THREADS");
}

}  // namespace
}  // namespace lockstep
