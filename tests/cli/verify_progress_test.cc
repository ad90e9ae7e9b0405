// The --verify progress display: silent on small runs, a line per tenth in logs, redrawn
// at most ten times a second on a terminal, and cleared before the report.
#include "cli/verify_progress.h"

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace lockstep {
namespace {

struct Captured {
  FILE* file = std::tmpfile();
  ~Captured() { std::fclose(file); }
  std::string Text() {
    std::fflush(file);
    std::rewind(file);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), file)) > 0) out.append(buf, n);
    return out;
  }
};

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

constexpr uint64_t kChunk = 256 << 10;

}  // namespace

TEST(VerifyProgress, SmallRunsShowNothing) {
  Captured out;
  double now = 0;
  VerifyProgress p(out.file, /*terminal=*/false, [&] { return now += 1; });
  const uint64_t total = VerifyProgress::kQuietBelowBytes - 1;
  for (uint64_t done = kChunk; done < total; done += kChunk) p.Update(done, total, "checkpoint-1");
  p.Finish();
  EXPECT_EQ(out.Text(), "");
}

TEST(VerifyProgress, LogsGetOneLinePerTenth) {
  Captured out;
  double now = 0;
  VerifyProgress p(out.file, /*terminal=*/false, [&] { return now += 0.001; });
  const uint64_t total = 4ull << 30;
  for (uint64_t done = kChunk; done <= total; done += kChunk) p.Update(done, total, "checkpoint-7");
  p.Finish();
  const std::string text = out.Text();
  EXPECT_EQ(Count(text, "\n"), 10) << text;
  EXPECT_EQ(Count(text, "\r"), 0) << text;
  EXPECT_NE(text.find("verifying checkpoint-7: 0.40 / 4.00 GiB ( 10%)"), std::string::npos) << text;
  EXPECT_NE(text.find("4.00 / 4.00 GiB (100%)"), std::string::npos) << text;
}

TEST(VerifyProgress, TerminalRedrawsAtMostTenTimesASecondThenClears) {
  Captured out;
  double now = 0;
  VerifyProgress p(out.file, /*terminal=*/true, [&] { return now += 0.0005; });  // 0.5 ms a chunk
  const uint64_t total = 2000 * kChunk;                                          // so one second
  for (uint64_t done = kChunk; done <= total; done += kChunk) p.Update(done, total, "checkpoint-2");
  p.Finish();
  const std::string text = out.Text();
  const int draws = Count(text, "verifying");
  EXPECT_GE(draws, 10);
  EXPECT_LE(draws, 12);  // the first, one per 100 ms, and the last
  EXPECT_NE(text.find("(100%)"), std::string::npos);
  EXPECT_EQ(text.substr(text.size() - 4), "\r\033[K");  // cleared for the report
}

}  // namespace lockstep
