// Run and checkpoint comparison: the first divergence is named by step and field, cause
// before effect; what identical runs may differ in (wall clock, paths) is ignored.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "diff/run_divergence.h"
#include "diff/step_compare.h"
#include "diff/tensor_diff.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/tensor_file.h"
#include "tests/run_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

json Record(int step) {
  return {{"step", step},
          {"sampler", {{"epoch", 0}, {"micro_batch", step - 1}, {"cursor", 5 * (step - 1)}}},
          {"batches", {{1, 2, 3}}},
          {"rng", {{"cpu", {{"size", 5056}, {"xxh3_128", "aa"}, {"base64", "AAAA"}}}}},
          {"lr", 0.001},
          {"loss", 2.5},
          {"loss_bits", "0x40200000"},
          {"grad_norm_bits", "0x3f800000"},
          {"epoch", 0.25},
          {"wall_time", 0.5}};
}

TensorData Floats(const std::string& name, std::vector<float> values) {
  TensorData t;
  t.name = name;
  t.shape = {static_cast<int64_t>(values.size())};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

}  // namespace

TEST(JsonDifference, SkipsWallClockFieldsAndNamesThePath) {
  const json a = {{"train_runtime", 1.0}, {"eval_samples_per_second", 3.0}, {"log", {{{"loss", 1.0}}}}};
  json b = {{"train_runtime", 2.0}, {"eval_samples_per_second", 9.0}, {"log", {{{"loss", 1.0}}}}};
  EXPECT_FALSE(FirstJsonDifference(a, b));
  b["log"][0]["loss"] = 1.5;
  const auto d = FirstJsonDifference(a, b);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->path, "log[0].loss");
  b["log"].push_back(json::object());
  b["log"][0]["loss"] = 1.0;
  EXPECT_EQ(FirstJsonDifference(a, b)->path, "log.length");
}

TEST(StepRecords, IdenticalButForWallTimeAndFullRngStatesMatch) {
  json b = Record(3);
  b["wall_time"] = 99.0;
  b["rng"]["cpu"].erase("base64");  // full states appear on some steps only
  EXPECT_FALSE(CompareStepRecords(test::Typed(Record(3)), test::Typed(b)));
}

// Issue 34's new-user trial: a step whose lr is NaN (stored as null) against one whose lr is
// a number was IDENTICAL, since nlohmann's != calls a NaN and a number unordered, not unequal.
TEST(StepRecords, ANaNAgainstANumberDiffers) {
  json b = Record(7);
  b["lr"] = nullptr;
  const auto d = CompareStepRecords(test::Typed(Record(7)), test::Typed(b));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->field, "lr");
  EXPECT_EQ(d->cause, "lr");
  EXPECT_EQ(d->reference, "0.001");
  EXPECT_FALSE(CompareStepRecords(test::Typed(b), test::Typed(b)));  // two NaNs are the same value here
  const auto j = FirstJsonDifference(json{{"loss", 1.5}}, json{{"loss", std::nan("")}});
  ASSERT_TRUE(j);
  EXPECT_EQ(j->path, "loss");
  EXPECT_FALSE(FirstJsonDifference(json{{"loss", std::nan("")}}, json{{"loss", std::nan("")}}));
}

TEST(StepRecords, TheCauseIsNamedBeforeItsEffects) {
  json b = Record(7);
  b["rng"]["cpu"]["xxh3_128"] = "bb";  // a different dropout draw ...
  b["loss_bits"] = "0x40200001";       // ... changes the loss
  b["loss"] = 2.5000002;
  auto d = CompareStepRecords(test::Typed(Record(7)), test::Typed(b));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->step, 7);
  EXPECT_EQ(d->field, "rng.cpu.xxh3_128");
  EXPECT_EQ(d->reference, "aa");
  EXPECT_EQ(d->candidate, "bb");

  b = Record(7);
  b["sampler"]["cursor"] = 0;
  b["batches"] = {{9, 9, 9}};
  EXPECT_EQ(CompareStepRecords(test::Typed(Record(7)), test::Typed(b))->field, "sampler.cursor");

  b = Record(7);
  b["resume_override"] = true;  // any other field counts too
  EXPECT_EQ(CompareStepRecords(test::Typed(Record(7)), test::Typed(b))->field, "resume_override");
}

TEST(CheckpointDiff, NamesTheFirstDifferingElementAndIgnoresPaths) {
  test::ScratchDir dir;
  for (const char* c : {"a", "b"}) fs::create_directories(dir.Join(c));
  ASSERT_TRUE(WriteTensorFile(dir.Join("a/model.h5"), {Floats("w", {1, 2, 3, 4}), Floats("b", {0})}).ok());
  ASSERT_TRUE(WriteTensorFile(dir.Join("b/model.h5"), {Floats("w", {1, 2, 3.5f, 4}), Floats("b", {0})}).ok());
  ASSERT_TRUE(WriteJsonFile(dir.Join("a/training_args.json"), {{"output_dir", "/x"}, {"seed", 1}}).ok());
  ASSERT_TRUE(WriteJsonFile(dir.Join("b/training_args.json"), {{"output_dir", "/y"}, {"seed", 1}}).ok());
  ASSERT_TRUE(WriteJsonFile(dir.Join("a/trainer_state.json"), {{"best_model_checkpoint", "/x/checkpoint-3"}}).ok());
  ASSERT_TRUE(WriteJsonFile(dir.Join("b/trainer_state.json"), {{"best_model_checkpoint", "/y/checkpoint-3"}}).ok());
  CheckpointDiff c;
  ASSERT_OK(DiffCheckpoints(dir.Join("a"), dir.Join("b"), Tolerance(), &c));
  ASSERT_EQ(c.tensors.size(), 2u);
  EXPECT_TRUE(c.state.empty()) << "output paths are not the run: " << c.state.front().field;
  EXPECT_FALSE(c.identical());
  const TensorDiff& w = c.tensors[0].name == "w" ? c.tensors[0] : c.tensors[1];
  const TensorDiff& b = c.tensors[0].name == "w" ? c.tensors[1] : c.tensors[0];
  ASSERT_EQ(w.name, "w");
  EXPECT_TRUE(b.identical());
  const Divergence d = TensorDivergence(w, 8, "a/model.h5");
  EXPECT_EQ(d.step, 8);
  EXPECT_EQ(d.cause, cause::kWeights);
  EXPECT_EQ(d.where, "a/model.h5");
  EXPECT_EQ(d.field, "w[2] (1 of 4 elements differ)");
  EXPECT_EQ(d.reference, "3 (0x40400000)");
  EXPECT_EQ(d.candidate, "3.5 (0x40600000)");
}

TEST(CheckpointDiff, CorruptTensorFileIsAnErrorNamingIt) {
  test::ScratchDir dir;
  for (const char* c : {"a", "b"}) fs::create_directories(dir.Join(c));
  ASSERT_TRUE(WriteTensorFile(dir.Join("a/model.h5"), {Floats("w", {1})}).ok());
  test::WriteAll(dir.Join("b/model.h5"), "not hdf5");
  CheckpointDiff c;
  Status st = DiffCheckpoints(dir.Join("a"), dir.Join("b"), Tolerance(), &c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(dir.Join("b/model.h5")), std::string::npos) << st.message();
}

TEST(RunDiff, IdenticalRunsAreBitExactAndAChangedLrIsFoundAtItsFirstStep) {
  test::ScratchDir dir;
  TrainingArgs a = test::Tiny("mlp", dir.Join("a"));  // warmup 2: step 1 runs at lr 0
  TrainingArgs b = a;
  b.output_dir = dir.Join("b");
  test::Train(a);
  test::Train(b);
  RunDiff c;
  ASSERT_OK(DiffRuns(a.output_dir, b.output_dir, Tolerance(), &c));
  EXPECT_TRUE(c.identical());
  EXPECT_EQ(c.steps_matching, 16);
  ASSERT_FALSE(c.checkpoints.empty());
  EXPECT_EQ(c.checkpoints.back().name, "checkpoint-16");
  EXPECT_GT(c.checkpoints.back().tensors_compared, 0);
  EXPECT_EQ(c.checkpoints.back().tensors_differing, 0);

  TrainingArgs d = a;
  d.output_dir = dir.Join("d");
  d.learning_rate = 2e-3;
  test::Train(d);
  ASSERT_OK(DiffRuns(a.output_dir, d.output_dir, Tolerance(), &c));
  EXPECT_FALSE(c.identical());
  ASSERT_TRUE(c.first_divergence);
  EXPECT_EQ(c.first_divergence->step, 2);
  EXPECT_EQ(c.first_divergence->where, "step log");
  EXPECT_EQ(c.first_divergence->field, "lr");
  EXPECT_EQ(c.steps_matching, 1);
  EXPECT_FALSE(c.checkpoints.back().identical);
}

// A run that reached the last step but lacks the final checkpoint (killed inside that save)
// is not the run that made it: the checkpoint is named as missing, never passed over.
TEST(RunDiff, AMissingFinalCheckpointIsADifference) {
  test::ScratchDir dir;
  TrainingArgs a = test::Tiny("mlp", dir.Join("a"));
  TrainingArgs b = a;
  b.output_dir = dir.Join("b");
  test::Train(a);
  test::Train(b);
  ASSERT_OK(RemoveTree(dir.Join("b/checkpoint-16")));  // not fs::remove_all: formats/file_util.h
  RunDiff c;
  ASSERT_OK(DiffRuns(a.output_dir, b.output_dir, Tolerance(), &c));
  EXPECT_FALSE(c.identical());
  ASSERT_TRUE(c.first_divergence);
  EXPECT_EQ(c.first_divergence->where, "checkpoint-16");
  EXPECT_EQ(c.first_divergence->candidate, "(absent)");
}

TEST(RunDiff, AnEmptyDirectoryIsAnErrorNamingIt) {
  test::ScratchDir dir;
  TrainingArgs a = test::Tiny("mlp", dir.Join("a"));
  test::Train(a);
  fs::create_directories(dir.Join("empty"));
  RunDiff c;
  Status st = DiffRuns(a.output_dir, dir.Join("empty"), Tolerance(), &c);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(dir.Join("empty")), std::string::npos) << st.message();
}

}  // namespace lockstep
