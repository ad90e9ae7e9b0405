// verify-resume's children: exec'd, or forked from the parent (the zygote, LibTorch already
// loaded). Both must look the same from the parent: stdout to its file, events on the pipe,
// the exit code, a SIGKILL seen as a signal.
#include "replay/child_process.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

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
  ASSERT_OK(ChildProcess::Start({"lockstep-train", "train"}, dir.Join("out.json"), dir.Join("err.txt"), &child,
                                ForkedMain));
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
  ASSERT_OK(ChildProcess::Start({"lockstep-train", "hang"}, dir.Join("out.json"), dir.Join("err.txt"), &child,
                                ForkedMain));
  std::string name;
  int64_t step = 0;
  ASSERT_EQ(child->NextEvent(10, &name, &step), ChildProcess::Next::kEvent);
  child->Kill();
  int code = 0, signal = 0;
  ASSERT_OK(child->Wait(&code, &signal));
  EXPECT_EQ(code, -1);
  EXPECT_EQ(signal, SIGKILL);
}

TEST(ChildProcess, AnExecThatCannotStartIsAnError) {
  test::ScratchDir dir;
  std::unique_ptr<ChildProcess> child;
  const Status st = ChildProcess::Start({dir.Join("no-such-binary")}, dir.Join("o"), dir.Join("e"), &child);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no-such-binary"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace lockstep
