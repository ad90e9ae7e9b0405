#include "tests/test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "formats/file_util.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace test {

ScratchDir::ScratchDir() {
  std::string tmpl = (fs::temp_directory_path() / "lockstep-test-XXXXXX").string();
  if (::mkdtemp(&tmpl[0]) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}
ScratchDir::~ScratchDir() { RemoveTree(path_); }

void FlipByte(const std::string& path, int64_t offset, uint8_t mask) {
  std::string data = ReadAll(path);
  const size_t pos = offset >= 0 ? static_cast<size_t>(offset) : data.size() - static_cast<size_t>(-offset);
  data.at(pos) = static_cast<char>(data.at(pos) ^ mask);
  WriteAll(path, data);
}

void ShrinkFile(const std::string& path, uint64_t bytes) { fs::resize_file(path, fs::file_size(path) - bytes); }

uint64_t FileSize(const std::string& path) { return fs::file_size(path); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

CommandOutput RunCommand(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  CommandOutput o;
  if (p == nullptr) return o;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) o.out.append(buf, n);
  const int status = ::pclose(p);
  o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

std::string Mutate(const std::string& data, std::mt19937* gen) {
  std::string d = data;
  auto below = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(*gen); };
  const size_t mode = below(10);
  if (mode < 6) {
    for (size_t k = 0, n = 1 + below(8); k < n; ++k) {
      const size_t where[3] = {below(std::min<size_t>(d.size(), 4096)), below(d.size()),
                               d.size() - 1 - below(std::min<size_t>(d.size(), 2048))};
      d[where[below(3)]] = static_cast<char>(below(256));
    }
  } else if (mode < 8) {
    d.resize(below(d.size()));
  } else {
    const size_t at = below(d.size());
    for (size_t k = at; k < std::min(d.size(), at + 8); ++k) d[k] = static_cast<char>(below(256));
  }
  return d;
}

StepRecord Typed(const nlohmann::json& stored) {
  StepRecord r;
  const Status st = ParseStepRecord(stored, "test record", &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return r;
}

std::vector<nlohmann::json> Stored(const std::vector<StepRecord>& records) {
  std::vector<nlohmann::json> out;
  for (const auto& r : records) out.push_back(StepRecordJson(r));
  return out;
}

}  // namespace test
}  // namespace lockstep
