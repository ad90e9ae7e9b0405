// HF parity of rotation against the live Trainer (issue 22): transformers' Trainer
// (tests/python/hf_parity.py) decides which checkpoints to keep after each save, its best
// protected; the reference trainer's rule, given HF's best at each save, keeps the same ones.
// Everything else the two trainers do is compared on random settings by
// tests/python/test_hf_differential.py (issue 33).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/rotation.h"
#include "formats/step_log.h"
#include "tests/python_env.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

using nlohmann::json;

// The rotation cases (the rest of HF parity, on random settings, is
// tests/python/test_hf_differential.py): each case's TrainingArguments, shared by both
// trainers, 2 epochs of 40 samples, batch 4, an evaluation and a save every 2 steps.
json Cases() {
  const json base = {
      {"per_device_train_batch_size", 4}, {"num_train_epochs", 2}, {"learning_rate", 0.01}, {"save_strategy", "steps"}};
  json cases = json::array();
  auto add = [&](const std::string& name, const json& args, int train = 40) {
    json a = base;
    a.update(args);
    cases.push_back({{"name", name}, {"args", a}, {"train_samples", train}, {"eval_samples", 24}});
  };
  const json best = {{"gradient_accumulation_steps", 1},
                     {"save_steps", 2},
                     {"eval_strategy", "steps"},
                     {"eval_steps", 2},
                     {"load_best_model_at_end", true}};
  json b = best;
  b.update({{"save_total_limit", 2}});
  add("rotation_best_eval_loss", b);
  b.update({{"save_total_limit", 1}});
  add("rotation_limit_1_best", b);
  b = best;
  b.update({{"save_total_limit", 3}, {"metric_for_best_model", "accuracy"}, {"greater_is_better", true}});
  add("rotation_best_accuracy", b);
  return cases;
}

// N of "checkpoint-N" (or a path ending in it); -1 for anything else.
int64_t StepOf(const std::string& checkpoint) {
  int64_t step = -1;
  return ParseCheckpointDirName(std::filesystem::path(checkpoint).filename().string(), &step) ? step : -1;
}

// The checkpoint-N directories of `dir`, by step.
std::vector<std::string> CheckpointNames(const std::string& dir) {
  std::vector<CheckpointDir> dirs;
  EXPECT_TRUE(ListCheckpointDirs(dir, &dirs).ok()) << dir;
  std::vector<std::string> names;
  for (const auto& d : dirs) names.push_back(std::filesystem::path(d.path).filename().string());
  return names;
}

// HF's rotation decisions replayed through the reference trainer's rule: after each of HF's
// saves, with HF's best checkpoint of that moment, the checkpoints the rule keeps are the
// ones HF kept.
void ExpectSameRotation(const json& hf, int64_t limit) {
  std::vector<int64_t> kept;
  for (const auto& save : hf["saves"]) {
    kept.push_back(save["step"].get<int64_t>());
    const int64_t best = save["best"].is_null() ? kNoBestStep : StepOf(save["best"].get<std::string>());
    for (int64_t gone : CheckpointsToDelete(kept, best, limit)) kept.erase(std::find(kept.begin(), kept.end(), gone));
    std::vector<std::string> names;
    for (int64_t s : kept) names.push_back("checkpoint-" + std::to_string(s));
    EXPECT_EQ(json(names), save["present"]) << "after HF's save at step " << save["step"] << ", best " << save["best"];
  }
}

TEST(HfParity, TheReferenceTrainerDoesWhatTheLiveTrainerDoes) {
  const std::string missing = test::PythonMissing("torch, transformers, accelerate");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const json cases = Cases();
  std::ofstream(dir.Join("cases.json")) << cases.dump();
  auto o = test::RunCommand(test::PythonScript("hf_parity.py") + " " + dir.Join("cases.json") + " " +
                            dir.Join("hf/live.json") + " 2>&1");
  ASSERT_EQ(o.code, 0) << o.out;
  json live;
  ASSERT_OK(ReadJsonFile(dir.Join("hf/live.json"), &live));

  for (const auto& c : cases) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const json& hf = live["cases"][name];
    json config = c["args"];
    config.update({{"output_dir", dir.Join("lockstep/" + name)},
                   {"model", "mlp"},
                   {"logging_steps", 1},
                   {"seed", 0},
                   {"train_samples", c["train_samples"]},
                   {"eval_samples", c["eval_samples"]}});
    const std::string config_file = dir.Join(name + ".json");
    std::ofstream(config_file) << config.dump();
    o = test::RunCommand(std::string(LOCKSTEP_BIN) + " train --quiet --config " + config_file + " 2>&1");
    ASSERT_EQ(o.code, 0) << o.out;
    ExpectSameRotation(hf, c["args"].value("save_total_limit", 0));
    EXPECT_EQ(CheckpointNames(dir.Join("lockstep/" + name)).size(), hf["checkpoints"].size()) << "checkpoints kept";
  }
}

}  // namespace
}  // namespace lockstep
