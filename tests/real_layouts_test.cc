// Directories the real libraries wrote (fixtures/real/make_fixtures.py: transformers, PEFT,
// torch; versions.txt), audited and diffed by their own rules (issue 21, findings 4 and 5):
// an output_dir after save_model() + save_state() is a run whose checkpoints are audited, a
// PEFT adapter is the model, save_only_model checkpoints are complete but not resumable, and
// a truncated or missing file is named.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "inspect/audit.h"
#include "inspect/show.h"
#include "replay/tensor_diff.h"
#include "tests/inspect_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

// A fresh copy of fixtures/real/NAME.tar.gz's NAME/ in `dir`.
std::string Unpack(const test::ScratchDir& dir, const std::string& name) {
  const auto o = test::RunCommand("tar xzf " + std::string(LOCKSTEP_FIXTURES_DIR) + "/real/" + name + ".tar.gz -C " +
                                  dir.path());
  EXPECT_EQ(o.code, 0) << o.out;
  return dir.Join(name);
}

test::CommandOutput Lockstep(const std::string& args) { return test::RunCommand(std::string(LOCKSTEP_BIN) + " " + args); }

bool Mentions(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines) {
    if (l.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(RealLayouts, AnOutputDirAfterSaveModelIsAuditedAsARun) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "hf_full_run");
  AuditReport r = test::Audit(run);
  ASSERT_EQ(r.checkpoints.size(), 2u);  // it used to be shown as one "hf checkpoint"
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "checkpoint-4");
  EXPECT_EQ(r.findings["final_model"]["file"], "model.safetensors");
  EXPECT_GT(r.findings["final_model"]["tensors"].get<int64_t>(), 10);

  test::ShrinkFile(run + "/checkpoint-4/model.safetensors", 100);
  fs::remove(run + "/checkpoint-2/optimizer.pt");
  test::ShrinkFile(run + "/model.safetensors", 100);
  const auto o = Lockstep("inspect " + run);
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("checkpoint-4/model.safetensors"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("checkpoint-2/optimizer.pt: missing"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("latest resumable         (none)"), std::string::npos) << o.out;
  r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_EQ(test::Find(r, 2).status, "incomplete");
  EXPECT_TRUE(Mentions(r.problems, run + "/model.safetensors")) << AuditReportJson(r).dump(2);
}

TEST(RealLayouts, APeftAdapterIsTheModel) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "peft_lora_run");
  AuditReport r = test::Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);  // its top-level files are no strays
  EXPECT_TRUE(r.notes.empty()) << AuditReportJson(r).dump(2);
  EXPECT_EQ(test::Find(r, 4).tensors, 2);
  json shown;
  ASSERT_OK(ShowPath(run + "/checkpoint-4", ShowOptions(), &shown));
  ASSERT_EQ(shown["tensors"].size(), 2u) << shown.dump(2);
  EXPECT_NE(shown["tensors"][0]["name"].get<std::string>().find("lora_A"), std::string::npos);
  CheckpointDiff d;
  ASSERT_OK(DiffCheckpoints(run + "/checkpoint-2", run + "/checkpoint-4", Tolerance(), &d));
  EXPECT_EQ(d.tensors[0].name.find("base_model.model."), 0u) << d.tensors[0].name;  // by tensor, not by hash

  test::ShrinkFile(run + "/checkpoint-4/adapter_model.safetensors", 64);
  fs::remove(run + "/checkpoint-2/adapter_config.json");
  r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "adapter_model.safetensors")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(test::Find(r, 2).status, "incomplete");
  EXPECT_TRUE(Mentions(test::Find(r, 2).problems, "adapter_config.json: missing")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "");
}

TEST(RealLayouts, SaveOnlyModelCheckpointsAreCompleteButNotResumable) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "only_model_run");
  const AuditReport r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "complete");
  EXPECT_FALSE(test::Find(r, 4).resumable);
  EXPECT_TRUE(Mentions(test::Find(r, 4).notes, "save_only_model")) << AuditReportJson(r).dump(2);
  EXPECT_EQ(r.latest_resumable, "");
  EXPECT_TRUE(Mentions(r.problems, "no checkpoint a resume continues exactly")) << AuditReportJson(r).dump(2);
}

TEST(RealLayouts, PytorchModelBinIsReadAsData) {
  test::ScratchDir dir;
  const std::string run = Unpack(dir, "bin_weights_run");
  AuditReport r = test::Audit(run);
  EXPECT_TRUE(r.healthy()) << AuditReportJson(r).dump(2);
  EXPECT_GT(test::Find(r, 4).tensors, 10);
  json shown;
  ASSERT_OK(ShowPath(run + "/checkpoint-4", ShowOptions(), &shown));
  EXPECT_EQ(shown["tensors"].size(), static_cast<size_t>(test::Find(r, 4).tensors)) << shown.dump(2);
  test::ShrinkFile(run + "/checkpoint-4/pytorch_model.bin", 2000);
  r = test::Audit(run);
  EXPECT_EQ(test::Find(r, 4).status, "corrupt");
  EXPECT_TRUE(Mentions(test::Find(r, 4).problems, "pytorch_model.bin")) << AuditReportJson(r).dump(2);
}

}  // namespace
}  // namespace lockstep
