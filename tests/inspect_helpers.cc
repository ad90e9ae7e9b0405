#include "tests/inspect_helpers.h"

#include <stdlib.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "formats/safetensors.h"
#include "tests/test_util.h"

namespace lockstep {
namespace test {

void WriteSafetensors(const std::string& path, const std::string& header, const std::string& data,
                      int64_t claimed_len) {
  const uint64_t n = claimed_len >= 0 ? static_cast<uint64_t>(claimed_len) : header.size();
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  WriteAll(path, bytes + header + data);
}

Status HeaderOf(const std::string& path) {
  SafetensorsFile f;
  return ReadSafetensorsHeader(path, &f);
}

void ExpectCorrupt(const Status& st, const std::string& needle) {
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

std::string HfRun() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/lockstep-hf-fixture-XXXXXX";
    const std::string d = ::mkdtemp(tmpl);
    const std::string cmd = "tar xzf " + std::string(LOCKSTEP_FIXTURES_DIR) + "/hf/hf_gpt2_run.tar.gz -C " + d;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return d + "/hf_gpt2_run";
  }();
  return dir;
}

std::string Train(const std::string& dir, const std::string& extra, int hidden_size) {
  const std::string cmd = std::string(LOCKSTEP_BIN) + " train --quiet --output_dir " + dir +
                          " --train_samples 37 --per_device_train_batch_size 5 --num_train_epochs 2 --hidden_size " +
                          std::to_string(hidden_size) + " --save_steps 4 " + extra + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return dir;
}

AuditReport Audit(const std::string& dir, bool verify) {
  AuditOptions o;
  o.verify = verify;
  AuditReport r;
  Status st = AuditRun(dir, o, &r);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return r;
}

const CheckpointAudit& Find(const AuditReport& r, int64_t step) {
  for (const auto& c : r.checkpoints)
    if (c.step == step) return c;
  static CheckpointAudit none;
  ADD_FAILURE() << "no checkpoint-" << step;
  return none;
}

bool Mentions(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines) {
    if (l.find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace test
}  // namespace lockstep
