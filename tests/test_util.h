// Test helpers: scratch directories and fault injection on files (after leveldb's
// corruption tests): flip a byte, shrink a file.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "formats/status.h"
#include "formats/step_record.h"

// Asserts that a Status is OK, printing it when it is not (leveldb's ASSERT_LEVELDB_OK).
#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const ::lockstep::Status _assert_st = (expr);          \
    ASSERT_TRUE(_assert_st.ok()) << _assert_st.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                    \
  do {                                                     \
    const ::lockstep::Status _expect_st = (expr);          \
    EXPECT_TRUE(_expect_st.ok()) << _expect_st.ToString(); \
  } while (0)

namespace lockstep {
namespace test {

// A fresh empty directory under the system temp dir, removed by the destructor.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// XORs the byte at `offset` (negative: from the end) with `mask`.
void FlipByte(const std::string& path, int64_t offset, uint8_t mask = 0x40);
// Cuts `bytes` bytes off the end of the file.
void ShrinkFile(const std::string& path, uint64_t bytes);
// A seeded mutant of `data`: a few bytes overwritten (near the head, anywhere, near the
// tail, where the structure of these formats lives), 8 random bytes, or a truncation.
std::string Mutate(const std::string& data, std::mt19937* gen);
uint64_t FileSize(const std::string& path);
bool FileExists(const std::string& path);  // any kind of entry, links not followed

// A shell command's exit code (-1 when a signal ended it) and its stdout and stderr.
struct CommandOutput {
  int code = -1;
  std::string out;  // stdout and stderr together
};
CommandOutput RunCommand(const std::string& command);
std::string ReadAll(const std::string& path);
void WriteAll(const std::string& path, const std::string& data);

// A step record given as the log stores it, parsed as every reader gets it (ParseStepRecord;
// a test fails on a record it refuses).
StepRecord Typed(const nlohmann::json& stored);
// Records as the log stores them, for tests that look at a field by its stored name.
std::vector<nlohmann::json> Stored(const std::vector<StepRecord>& records);

}  // namespace test
}  // namespace lockstep
