// Test helpers: scratch directories and fault injection on files (after leveldb's
// corruption tests): flip a byte, shrink a file.
#pragma once

#include <cstdint>
#include <string>

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
uint64_t FileSize(const std::string& path);
std::string ReadAll(const std::string& path);
void WriteAll(const std::string& path, const std::string& data);

}  // namespace test
}  // namespace lockstep
