// End-to-end runs of the reference trainer on tiny configurations.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/step_log.h"
#include "formats/tensor_file.h"
#include "tests/run_helpers.h"
#include "tests/test_util.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;

namespace lockstep {
using namespace test;  // NOLINT: Tiny, Quiet, Train, Log

class SameSeed : public ::testing::TestWithParam<std::string> {};

TEST_P(SameSeed, TwoRunsGiveByteIdenticalStepLogsAndWeights) {
  test::ScratchDir a_dir, b_dir, c_dir;
  TrainingArgs a = Tiny(GetParam(), a_dir.path());
  a.gradient_accumulation_steps = 3;  // uneven: windows of 3, 3, 2 micro-batches
  TrainingArgs b = a;
  b.output_dir = b_dir.path();
  Train(a);
  Train(b);
  EXPECT_EQ(test::ReadAll(a_dir.Join(kStepLogFile)), test::ReadAll(b_dir.Join(kStepLogFile)));
  for (const char* f : {"model.h5", "optimizer.h5"}) {
    const std::string pa = a_dir.Join("checkpoint-6/") + f, pb = b_dir.Join("checkpoint-6/") + f;
    EXPECT_EQ(Tensors(pa), Tensors(pb)) << f;
    EXPECT_EQ(test::ReadAll(pa), test::ReadAll(pb)) << f;
  }
  // A different seed must change the run (the comparison above can fail).
  TrainingArgs c = a;
  c.output_dir = c_dir.path();
  c.seed = 43;
  Train(c);
  EXPECT_NE(Tensors(a_dir.Join("checkpoint-6/model.h5")), Tensors(c_dir.Join("checkpoint-6/model.h5")));
  EXPECT_NE(StepRecordJson(Log(a_dir.path()).records[0])["loss_bits"],
            StepRecordJson(Log(c_dir.path()).records[0])["loss_bits"]);
}

INSTANTIATE_TEST_SUITE_P(BothModels, SameSeed, ::testing::Values("mlp", "gpt"));

TEST(TrainingRun, StepLogFollowsHfCountingWithUnevenAccumulation) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  a.gradient_accumulation_steps = 3;
  TrainResult r = Train(a);
  EXPECT_EQ(r.global_step, 6);  // 8 micro-batches per epoch -> 3 updates, 2 epochs
  StepLogContents log = Log(dir.path());
  ASSERT_EQ(log.records.size(), 6u);
  const double epochs[] = {3.0 / 8, 6.0 / 8, 1.0, 1 + 3.0 / 8, 1 + 6.0 / 8, 2.0};
  const size_t windows[] = {3, 3, 2, 3, 3, 2};
  for (size_t i = 0; i < 6; ++i) {
    const nlohmann::json rec = StepRecordJson(log.records[i]);
    EXPECT_EQ(rec["step"], i + 1);
    EXPECT_DOUBLE_EQ(rec["epoch"].get<double>(), epochs[i]) << i;
    EXPECT_EQ(rec["batches"].size(), windows[i]) << i;
    EXPECT_EQ(rec["sampler"]["epoch"], i / 3);
  }
  EXPECT_EQ(StepRecordJson(log.records[0])["lr"], 0.0);  // warmup: the first update uses lr 0, as HF logs it
  EXPECT_GT(StepRecordJson(log.records[2])["lr"].get<double>(), 0.0);
  // Each epoch visits every sample exactly once, the last micro-batch holding 2.
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::multiset<int64_t> seen;
    for (int i = epoch * 3; i < epoch * 3 + 3; ++i) {
      for (const auto& mb : log.records[i].batches)
        for (const int64_t id : mb) seen.insert(id);
    }
    EXPECT_EQ(seen.size(), 37u);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 37u);
  }
  EXPECT_EQ(StepRecordJson(log.records[2])["batches"][1].size(), 2u);
  // The exact loss bits agree with the decimal.
  float f = StepRecordJson(log.records[0])["loss"].get<float>();
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  EXPECT_EQ(std::stoul(StepRecordJson(log.records[0])["loss_bits"].get<std::string>(), nullptr, 16), bits);
}

TEST(TrainingRun, TrainerStateAndResultsUseHfFields) {
  test::ScratchDir dir;
  TrainResult r = Train(Tiny("mlp", dir.path()));
  EXPECT_EQ(r.global_step, 16);
  nlohmann::json state;
  ASSERT_TRUE(ReadJsonFile(dir.Join("checkpoint-16/trainer_state.json"), &state).ok());
  for (const char* key :
       {"epoch", "global_step", "max_steps", "logging_steps", "eval_steps", "save_steps", "train_batch_size",
        "num_train_epochs", "total_flos", "log_history", "best_metric", "best_global_step", "best_model_checkpoint"}) {
    EXPECT_TRUE(state.contains(key)) << key;
  }
  EXPECT_EQ(state["global_step"], 16);
  EXPECT_EQ(state["log_history"].size(), 16u);
  EXPECT_DOUBLE_EQ(state["log_history"][0]["epoch"].get<double>(), 0.125);
  EXPECT_EQ(state["log_history"][0]["learning_rate"], 0.0);
  for (const char* f : {"train_results.json", "eval_results.json", "all_results.json", "trainer_state.json"}) {
    EXPECT_TRUE(fs::exists(dir.Join(f))) << f;
  }
  // train_loss is the mean of the per-step losses.
  double sum = 0;
  for (const auto& rec : test::Stored(Log(dir.path()).records)) sum += rec["loss"].get<double>();
  EXPECT_NEAR(r.train_loss, sum / 16, 1e-6);
  EXPECT_TRUE(ValidateCheckpoint(dir.Join("checkpoint-12"), VerifyMode::kChecksums).ok());
}

TEST(TrainingRun, RotationKeepsBestAndNewest) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  a.num_train_epochs = 4;
  a.eval_strategy = "steps";
  a.eval_steps = 4;
  a.save_steps = 4;
  a.save_total_limit = 1;
  a.metric_for_best_model = "loss";
  a.greater_is_better = true;  // "best" = highest eval loss: the first eval, never the newest
  TrainResult r = Train(a);
  ASSERT_TRUE(r.best_model_checkpoint.has_value());
  EXPECT_EQ(*r.best_model_checkpoint, dir.Join("checkpoint-4"));
  // Limit 1 with a best that is not the newest keeps two while training (the best and the
  // last: every save is the run's newest), and at the end the best alone, as HF's
  // _finalize_training deletes the others.
  EXPECT_EQ(r.saved_steps.size(), 8u);
  std::vector<CheckpointDir> dirs;
  ASSERT_TRUE(ListCheckpointDirs(dir.path(), &dirs).ok());
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].step, 4);
}

TEST(TrainingRun, LoadBestModelAtEndReloadsBestWeights) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  a.eval_strategy = "steps";
  a.eval_steps = 4;
  a.save_steps = 4;
  a.load_best_model_at_end = true;
  TrainResult r = Train(a);
  ASSERT_TRUE(r.best_model_checkpoint.has_value());
  nlohmann::json state;
  ASSERT_TRUE(ReadJsonFile(dir.Join("trainer_state.json"), &state).ok());
  // The final evaluation ran on the best weights: it reproduces the best metric.
  EXPECT_DOUBLE_EQ(r.eval_metrics["eval_loss"].get<double>(), state["best_metric"].get<double>());
}

TEST(TrainingRun, KilledRunLeavesAReadableTruncatedLog) {
  test::ScratchDir dir;
  TrainOptions o = Quiet();
  o.step_log.records_per_frame = 4;
  TrainingArgs a = Tiny("mlp", dir.path());
  a.save_strategy = "no";
  Train(a, o);
  const std::string path = dir.Join(kStepLogFile);
  StepLogContents full = Log(dir.path());
  ASSERT_EQ(full.records.size(), 16u);
  test::ShrinkFile(path, 25);  // the process died while writing its last frame
  StepLogContents cut;
  ASSERT_TRUE(ReadStepLog(path, &cut).ok());
  EXPECT_TRUE(cut.truncated_tail);
  EXPECT_EQ(cut.records.size(), 12u);
  for (size_t i = 0; i < cut.records.size(); ++i)
    EXPECT_EQ(StepRecordJson(cut.records[i]), StepRecordJson(full.records[i]));
}

TEST(TrainingRun, RngStatesAreDigestedEveryStepAndFullPeriodically) {
  test::ScratchDir dir;
  TrainOptions o = Quiet();
  o.rng_full_state_every = 5;
  Train(Tiny("gpt", dir.path()), o);
  StepLogContents log = Log(dir.path());
  for (const auto& rec : test::Stored(log.records)) {
    const int64_t step = rec["step"];
    EXPECT_EQ(rec["rng"]["cpu"]["size"], 5056);
    EXPECT_EQ(rec["rng"]["cpu"]["xxh3_128"].get<std::string>().size(), 32u);
    EXPECT_EQ(rec["rng"]["cpu"].contains("base64"), (step - 1) % 5 == 0) << step;
  }
  // Dropout draws from the device's generator, so its state moves every step.
  const std::string device_rng = StepRecordJson(log.records[0])["rng"].contains("cuda") ? "cuda" : "cpu";
  EXPECT_NE(StepRecordJson(log.records[0])["rng"][device_rng]["xxh3_128"],
            StepRecordJson(log.records[1])["rng"][device_rng]["xxh3_128"]);
}

TEST(TrainingRun, OccupiedOutputDirIsRefusedUnlessOverwriting) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  Train(a);
  const std::string before = test::ReadAll(dir.Join(kStepLogFile));
  TrainResult r;
  Status st = RunTraining(a, Quiet(), &r);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("already holds a run"), std::string::npos) << st.message();
  EXPECT_EQ(test::ReadAll(dir.Join(kStepLogFile)), before);  // nothing was touched
  a.overwrite_output_dir = true;
  EXPECT_TRUE(RunTraining(a, Quiet(), &r).ok());
}

TEST(TrainingRun, BadSettingsAreRefusedBeforeAnythingIsWritten) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.Join("never"));
  a.per_device_train_batch_size = 0;
  TrainResult r;
  Status st = RunTraining(a, Quiet(), &r);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_FALSE(fs::exists(dir.Join("never")));
}

}  // namespace lockstep

namespace lockstep {
namespace {

// Copies a finished run and removes its checkpoints after `keep_through`, as if the run
// had been killed after saving checkpoint-<keep_through> (its step log runs past it).
void KilledCopy(const std::string& from, const std::string& to, int64_t keep_through) {
  ASSERT_TRUE(CopyTree(from, to).ok());
  std::vector<CheckpointDir> dirs;
  ASSERT_TRUE(ListCheckpointDirs(to, &dirs).ok());
  for (const auto& d : dirs)
    if (d.step > keep_through) ASSERT_TRUE(RemoveTree(d.path).ok());
}

}  // namespace

class BitExactResume : public ::testing::TestWithParam<std::string> {};

TEST_P(BitExactResume, FromEveryStepMatchesTheUninterruptedRun) {
  test::ScratchDir ref_dir;
  TrainingArgs a = Tiny(GetParam(), ref_dir.Join("ref"));
  a.gradient_accumulation_steps = 3;  // windows 3, 3, 2: epoch boundaries after steps 3 and 6
  a.save_steps = 1;
  a.logging_steps = 2;
  TrainResult ref = Train(a);
  ASSERT_EQ(ref.global_step, 6);
  const auto ref_log = Comparable(Log(a.output_dir));
  const auto ref_weights = test::ReadAll(a.output_dir + "/checkpoint-6/model.h5");
  for (int64_t k = 1; k <= 5; ++k) {
    SCOPED_TRACE("resumed from checkpoint-" + std::to_string(k));
    const std::string dir = ref_dir.Join("resumed-" + std::to_string(k));
    KilledCopy(a.output_dir, dir, k);
    TrainingArgs b = a;
    b.output_dir = dir;
    TrainOptions o = Quiet();
    o.resume_from = "";
    TrainResult r = Train(b, o);
    EXPECT_EQ(r.resumed_from, dir + "/checkpoint-" + std::to_string(k));
    EXPECT_EQ(Comparable(Log(dir)), ref_log);
    EXPECT_EQ(test::ReadAll(dir + "/checkpoint-6/model.h5"), ref_weights);
    EXPECT_EQ(r.train_loss, ref.train_loss);  // HF's resume bug #7 would break this
  }
}

INSTANTIATE_TEST_SUITE_P(BothModels, BitExactResume, ::testing::Values("mlp", "gpt"));

TEST(Resume, HalfWrittenNewestCheckpointIsSkippedForThePreviousOne) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.Join("run"));
  a.save_steps = 4;
  a.max_steps = 8;
  Train(a);
  fs::create_directory(a.output_dir + "/checkpoint-12");  // a save killed before its manifest
  test::WriteAll(a.output_dir + "/checkpoint-12/model.h5", "partial");
  TrainOptions o = Quiet();
  o.resume_from = "";
  a.max_steps = 10;
  TrainResult r;
  // max_steps decides the run's schedule: a changed one is refused, listing the difference.
  Status st = RunTraining(a, o, &r);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("max_steps: checkpoint 8, now 10"), std::string::npos) << st.message();
  a.max_steps = 8;
  st = RunTraining(a, o, &r);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(r.resumed_from, a.output_dir + "/checkpoint-8");
  ASSERT_EQ(r.skipped_checkpoints.size(), 1u);  // and it says so
  EXPECT_NE(r.skipped_checkpoints[0].find("checkpoint-12: "), std::string::npos) << r.skipped_checkpoints[0];
  EXPECT_NE(r.skipped_checkpoints[0].find("no manifest.json"), std::string::npos) << r.skipped_checkpoints[0];
}

// A resume reads a checkpoint's tensor files once, verifying them as they load. A damaged
// tensor in the newest checkpoint then shows mid-load, and must still be skipped as a whole
// read would have skipped it: the older checkpoint is loaded whole (the half-loaded state
// overwritten), and the run ends bit for bit as the undamaged run did. Named explicitly,
// the damaged checkpoint is refused, naming the file.
TEST(Resume, ANewestCheckpointWhoseTensorsAreDamagedIsSkippedAsItLoads) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.Join("run"));
  a.save_steps = 4;
  a.max_steps = 8;
  Train(a);
  const std::string newest = a.output_dir + "/checkpoint-8", model = newest + "/" + kModelFile;
  const std::string ref_weights = test::ReadAll(model);
  Manifest m;
  ASSERT_OK(ValidateCheckpoint(newest, VerifyMode::kSizes, &m));
  const auto entry =
      std::find_if(m.files.begin(), m.files.end(), [](const ManifestEntry& e) { return e.path == kModelFile; });
  ASSERT_NE(entry, m.files.end());
  ASSERT_FALSE(entry->content.tensors.empty());  // the manifest says where the tensors lie
  test::FlipByte(model, static_cast<int64_t>(entry->content.tensors.back().offset + 2));

  TrainOptions o = Quiet();
  o.resume_from = newest;
  TrainResult r;
  Status st = RunTraining(a, o, &r);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(model + ": checksum"), std::string::npos) << st.message();

  o.resume_from = "";
  st = RunTraining(a, o, &r);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(r.resumed_from, a.output_dir + "/checkpoint-4");
  ASSERT_EQ(r.skipped_checkpoints.size(), 1u);
  EXPECT_NE(r.skipped_checkpoints[0].find(model + ": checksum"), std::string::npos) << r.skipped_checkpoints[0];
  EXPECT_EQ(test::ReadAll(model), ref_weights);  // saved again, by the resumed run
}

TEST(Resume, ChangedBatchSizeIsRefusedClearly) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.Join("run"));
  Train(a);
  const std::string log_before = test::ReadAll(a.output_dir + "/" + kStepLogFile);
  a.per_device_train_batch_size = 4;
  a.logging_steps = 3;  // safe to change: not listed
  TrainOptions o = Quiet();
  o.resume_from = "";
  TrainResult r;
  Status st = RunTraining(a, o, &r);
  ASSERT_TRUE(st.IsInvalidArgument());
  EXPECT_NE(st.message().find("per_device_train_batch_size: checkpoint 5, now 4"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("logging_steps"), std::string::npos) << st.message();
  EXPECT_EQ(test::ReadAll(a.output_dir + "/" + kStepLogFile), log_before);  // untouched
}

TEST(Resume, NoCheckpointIsAnErrorNeverAFreshStart) {
  test::ScratchDir dir;
  TrainingArgs a = Tiny("mlp", dir.path());
  TrainOptions o = Quiet();
  o.resume_from = "";
  TrainResult r;
  Status st = RunTraining(a, o, &r);
  EXPECT_TRUE(st.IsNotFound());
  EXPECT_NE(st.message().find("refusing to start from scratch"), std::string::npos) << st.message();
}

}  // namespace lockstep
