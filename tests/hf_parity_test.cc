// HF parity against the live Trainer (issue 22): for the same arguments, the reference
// trainer (`lockstep train`) and transformers' Trainer (tests/python/hf_parity.py) use the same
// lr at every step for every scheduler type, count the same steps and epochs (accumulation
// with a short last window, drop_last, max_steps within and beyond the epochs), name the same
// checkpoints, rotate them by the same rule with the best one protected, and write the same
// trainer_state.json fields and results files. The frozen fixture (hf_lr_schedules.json) stays
// as regression data; this test asks the installed transformers itself.
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

// Each case's TrainingArguments, shared by both trainers (the reference trainer's flags have
// HF's names). Every case trains 2 epochs of 40 samples, batch 4, accumulation 2, unless it
// says otherwise.
json Cases() {
  const json base = {{"per_device_train_batch_size", 4},
                     {"gradient_accumulation_steps", 2},
                     {"num_train_epochs", 2},
                     {"learning_rate", 0.01},
                     {"save_strategy", "steps"},
                     {"save_steps", 3}};
  json cases = json::array();
  auto add = [&](const std::string& name, const json& args, int train = 40) {
    json a = base;
    a.update(args);
    cases.push_back({{"name", name}, {"args", a}, {"train_samples", train}, {"eval_samples", 24}});
  };
  for (const char* type :
       {"linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"}) {
    add(std::string("lr_") + type, {{"lr_scheduler_type", type}, {"warmup_steps", 3}});
  }
  add("lr_cosine_with_min_lr", {{"lr_scheduler_type", "cosine_with_min_lr"},
                                {"warmup_steps", 3},
                                {"lr_scheduler_kwargs", {{"min_lr_rate", 0.1}}}});
  add("lr_cosine_restarts_cycles",
      {{"lr_scheduler_type", "cosine_with_restarts"}, {"lr_scheduler_kwargs", {{"num_cycles", 2}}}}, 64);
  add("warmup_ratio", {{"warmup_steps", 0.25}});
  add("short_last_window", {{"gradient_accumulation_steps", 3}, {"num_train_epochs", 3}}, 50);
  add("drop_last", {{"gradient_accumulation_steps", 3}, {"dataloader_drop_last", true}}, 50);
  add("max_steps_within_epochs", {{"max_steps", 7}});
  add("max_steps_beyond_epochs", {{"num_train_epochs", 1}, {"max_steps", 12}});
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

json KeysOf(const json& object) {
  json keys = json::array();
  for (const auto& [k, v] : object.items()) keys.push_back(k);
  return keys;  // nlohmann's object iterates its keys sorted, as Python's sorted() does
}

// The log entries' key sets, as hf_parity.py lists them.
json LogKeySets(const json& log_history) {
  std::set<std::vector<std::string>> sets;
  for (const auto& e : log_history) sets.insert(KeysOf(e).get<std::vector<std::string>>());
  return json(std::vector<std::vector<std::string>>(sets.begin(), sets.end()));
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

  int lr_compared = 0;
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
    const std::string run = dir.Join("lockstep/" + name);

    StepLogContents log;
    ASSERT_OK(ReadStepLog(run + "/steps.jsonl.zst", &log));
    ASSERT_EQ(log.records.size(), hf["lr"].size()) << "optimizer steps";
    for (size_t i = 0; i < log.records.size(); ++i, ++lr_compared) {
      EXPECT_EQ(log.records[i]["lr"].get<double>(), hf["lr"][i].get<double>()) << "lr of step " << i + 1;
    }
    json state;
    ASSERT_OK(ReadJsonFile(run + "/trainer_state.json", &state));
    for (const char* field : {"global_step", "max_steps", "num_train_epochs"}) {
      EXPECT_EQ(state[field], hf[field]) << field;
    }
    EXPECT_DOUBLE_EQ(state["epoch"].get<double>(), hf["epoch"].get<double>()) << "epoch";
    EXPECT_EQ(KeysOf(state), hf["trainer_state_keys"]) << "trainer_state.json fields";
    EXPECT_EQ(LogKeySets(state["log_history"]), hf["log_keys"]) << "log_history entries";
    for (const auto& [file, keys] : hf["results"].items()) {
      json results;
      ASSERT_OK(ReadJsonFile(run + "/" + file, &results));
      EXPECT_EQ(KeysOf(results), keys) << file;
    }
    const int64_t limit = c["args"].value("save_total_limit", 0);
    if (limit == 0) {
      EXPECT_EQ(json(CheckpointNames(run)), hf["checkpoints"]) << "checkpoint names";
    } else {
      ExpectSameRotation(hf, limit);
      EXPECT_EQ(CheckpointNames(run).size(), hf["checkpoints"].size()) << "checkpoints kept";
    }
  }
  EXPECT_GT(lr_compared, 200);
}

}  // namespace
}  // namespace lockstep
