// `lockstep diff` on Hugging Face output directories (log_history entry by entry), on
// module traces, and on step logs read by the viewer; hostile inputs to all of them.
#include <cmath>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>

#include "diff/module_trace.h"
#include "diff/run_divergence.h"
#include "diff/tensor_diff.h"
#include "formats/json_file.h"
#include "formats/module_trace.h"
#include "formats/step_log.h"
#include "formats/tensor_sources.h"
#include "inspect/coverage.h"
#include "inspect/step_log_view.h"
#include "tests/inspect_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

// A copy of the HF fixture whose newest trainer_state.json has log entry `index`'s `key`
// replaced by `value`.
std::string EditedHfRun(const test::ScratchDir& dir, size_t index, const std::string& key, const json& value) {
  const std::string copy = dir.Join("hf_edited");
  fs::copy(test::HfRun(), copy, fs::copy_options::recursive);
  const std::string state_path = copy + "/checkpoint-16/trainer_state.json";
  json state;
  EXPECT_OK(ReadJsonFile(state_path, &state));
  state["log_history"][index][key] = value;
  EXPECT_OK(WriteJsonFile(state_path, state));
  return copy;
}

// Issue 21, finding 3: the same HF run written to another directory (its training_args.bin
// names another output_dir) was "DIFFERENT", cause state: the pickle scanner had taken the
// path for a key. Paths are not run-deciding; a changed learning rate still is a setting.
TEST(HfRunDiff, TheSameRunInAnotherDirectoryIsIdentical) {
  test::ScratchDir dir;
  const std::string copy = dir.Join("elsewhere");
  fs::copy(test::HfRun(), copy, fs::copy_options::recursive);
  for (const char* checkpoint : {"checkpoint-3", "checkpoint-16"}) {  // same length: the pickle stays valid
    const std::string bin = copy + "/" + checkpoint + "/training_args.bin";
    const auto o = test::RunCommand("/usr/bin/python3 -c \"import zipfile; a=zipfile.ZipFile('" + bin +
                                    "'); "
                                    "items=[(i, a.read(i)) for i in a.infolist()]; a.close(); "
                                    "b=zipfile.ZipFile('" +
                                    bin +
                                    "','w'); [b.writestr(i, d.replace(b'/tmp/hfpub/run', "
                                    "b'/srv/hfabc/run')) for i, d in items]\"");
    ASSERT_EQ(o.code, 0) << o.out;
  }
  json values;
  ASSERT_OK(ReadPickledSettings(copy + "/checkpoint-16/training_args.bin", &values));
  ASSERT_EQ(values["output_dir"], "/srv/hfabc/run");  // the premise: the runs name other directories
  RunDiff d;
  ASSERT_OK(DiffRuns(test::HfRun(), copy, Tolerance(), &d));
  EXPECT_TRUE(d.identical()) << RunDiffText(d, "a", "b");
  EXPECT_TRUE(d.settings.empty()) << RunDiffText(d, "a", "b");
  CheckpointDiff c;
  ASSERT_OK(DiffCheckpoints(test::HfRun() + "/checkpoint-16", copy + "/checkpoint-16", Tolerance(), &c));
  EXPECT_TRUE(c.identical()) << CheckpointDiffText(c, Tolerance());
}

// Issue 21, finding 6: torch.save files (written by torch, fixtures/torch/make_fixtures.py).
TEST(TorchFileDiff, ValuesBesideTensorsAreComparedAndKeyOrderDoesNotMatter) {
  const std::string t = std::string(LOCKSTEP_FIXTURES_DIR) + "/torch/";
  const std::string diff = std::string(LOCKSTEP_BIN) + " diff ";
  auto o = test::RunCommand(diff + t + "optimizer_lr01.pt " + t + "optimizer_lr02.pt");
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("param_groups[0].lr  a 0.1, b 0.2"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("IDENTICAL"), std::string::npos) << o.out;
  o = test::RunCommand(diff + t + "scheduler_a.pt " + t + "scheduler_b.pt");
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("_last_lr[0]  a 0.1, b 0.05"), std::string::npos) << o.out;
  o = test::RunCommand(diff + t + "model.pt " + t + "model_reordered.pt");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("IDENTICAL: 2 tensors bit for bit"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("#"), std::string::npos) << o.out;  // no storage-key names
  o = test::RunCommand(std::string(LOCKSTEP_BIN) + " inspect " + t + "model.pt");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("tensors (2)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("model.pt:fc.weight"), std::string::npos) << o.out;
}

// Issue 21, finding 15: a run against a copy whose log lost its tail said "cause length
// ((record))" without naming the file; against a copy without its log it was "IDENTICAL: 1 log
// entries", over what both record, without a word of the 16 records it could not compare.
TEST(RunDiffWording, AShortOrMissingLogIsNamedAndNeverIdentical) {
  test::ScratchDir dir;
  const std::string run = test::Train(dir.Join("run"));
  fs::copy(run, dir.Join("cut"), fs::copy_options::recursive);
  test::ShrinkFile(dir.Join("cut/steps.jsonl.zst"), 200);
  RunDiff d;
  ASSERT_OK(DiffRuns(run, dir.Join("cut"), Tolerance(), &d));
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->where, dir.Join("cut/steps.jsonl.zst"));
  EXPECT_NE(d.first_divergence->candidate.find("the file ends inside a frame"), std::string::npos)
      << d.first_divergence->ToString();
  fs::copy(run, dir.Join("nolog"), fs::copy_options::recursive);
  fs::remove(dir.Join("nolog/steps.jsonl.zst"));
  ASSERT_OK(DiffRuns(run, dir.Join("nolog"), Tolerance(), &d));
  EXPECT_NE(d.not_compared.find("the reference's 16 step records"), std::string::npos) << d.not_compared;
  const std::string text = RunDiffText(d, "a", "b");
  EXPECT_NE(text.find("IDENTICAL IN WHAT BOTH RECORD"), std::string::npos) << text;
  EXPECT_EQ(text.find("IDENTICAL:"), std::string::npos) << text;
}

TEST(RunDiffWording, NaNAgainstANumberIsNeverADistanceOfZero) {
  test::ScratchDir dir;
  const float nan = std::nanf(""), one = 1.0f;
  std::string a(reinterpret_cast<const char*>(&nan), 4), b(reinterpret_cast<const char*>(&one), 4);
  const std::string header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  test::WriteSafetensors(dir.Join("a.safetensors"), header, a);
  test::WriteSafetensors(dir.Join("b.safetensors"), header, b);
  CheckpointDiff d;
  ASSERT_OK(DiffCheckpoints(dir.Join("a.safetensors"), dir.Join("b.safetensors"), Tolerance(), &d));
  ASSERT_EQ(d.tensors.size(), 1u);
  EXPECT_TRUE(std::isnan(d.tensors[0].max_abs)) << d.tensors[0].max_abs;
  EXPECT_EQ(d.tensors[0].ToJson()["max_abs"], "nan");
}

TEST(HfRunDiff, TheFixtureAgainstItselfIsIdentical) {
  RunDiff d;
  ASSERT_OK(DiffRuns(test::HfRun(), test::HfRun(), Tolerance(), &d));
  EXPECT_TRUE(d.identical());
  EXPECT_EQ(d.compared_by, "log_history");
  EXPECT_EQ(d.kind_a, "hf run");
  EXPECT_EQ(d.checkpoints.size(), 2u);
  EXPECT_TRUE(RunDiffJson(d)["first_divergence"].is_null());
}

// Without a step log nothing before the loss was compared (issue 21, finding 15): the cause
// is "unknown", not "numerics", which would claim equal data, RNG and lr.
TEST(HfRunDiff, AnEditedLossIsAnUnknownCauseAtItsStep) {
  test::ScratchDir dir;
  json state;
  ASSERT_OK(ReadJsonFile(test::HfRun() + "/checkpoint-16/trainer_state.json", &state));
  const float loss = state["log_history"][4]["loss"].get<float>();
  const std::string edited = EditedHfRun(dir, 4, "loss", std::nextafter(loss, 10.0f));
  RunDiff d;
  ASSERT_OK(DiffRuns(test::HfRun(), edited, Tolerance(), &d));
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->cause, "unknown");
  EXPECT_EQ(d.first_divergence->step, state["log_history"][4]["step"].get<int64_t>());
  EXPECT_EQ(d.first_divergence->field, "log_history[4].loss");
  EXPECT_EQ(d.first_divergence->where, "trainer_state.json");
  EXPECT_EQ(d.numerics["loss"]["ulp_float32"], 1);
  EXPECT_FALSE(d.within_tolerance());
  // One ULP is within --ulp 1.
  ASSERT_OK(DiffRuns(test::HfRun(), edited, {std::nullopt, std::nullopt, 1}, &d));
  EXPECT_TRUE(d.within_tolerance());
  EXPECT_FALSE(d.identical());
}

TEST(HfRunDiff, AnEditedLearningRateIsLr) {
  test::ScratchDir dir;
  const std::string edited = EditedHfRun(dir, 2, "learning_rate", 0.123);
  RunDiff d;
  ASSERT_OK(DiffRuns(test::HfRun(), edited, Tolerance(), &d));
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->cause, "lr");
  EXPECT_EQ(d.first_divergence->step, 3);
}

TEST(HfRunDiff, ALockstepRunAgainstAnHfRunComparesWhatBothRecord) {
  test::ScratchDir dir;
  const std::string run = test::Train(dir.Join("run"));
  RunDiff d;
  ASSERT_OK(DiffRuns(run, test::HfRun(), Tolerance(), &d));
  EXPECT_EQ(d.compared_by, "log_history");
  ASSERT_TRUE(d.first_divergence);  // different models: they part at once
  for (const auto& s : d.settings) {
    EXPECT_EQ(s.name.rfind("training_args.", 0), 0u) << s.name;  // only names both formats have
  }
}

TEST(RunDiffInput, NotARunIsInvalidArgumentNamingIt) {
  test::ScratchDir dir;
  fs::create_directories(dir.Join("empty"));
  RunDiff d;
  Status st = DiffRuns(dir.Join("empty"), test::HfRun(), Tolerance(), &d);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_NE(st.message().find("empty"), std::string::npos);
  st = DiffRuns(dir.Join("absent"), test::HfRun(), Tolerance(), &d);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
}

// Two traces of one step, the second with module "b" (and what follows it) perturbed.
void WriteTraces(const test::ScratchDir& dir) {
  const std::vector<float> x = {1, 2, 3}, y = {1, 2, std::nextafter(3.0f, 4.0f)};
  json a = {{"step", 4}, {"entries", json::array()}}, b = a;
  for (const char* name : {"a", "b", "c"}) {
    const bool moved = std::string(name) != "a";
    a["entries"].push_back(ModuleTraceEntry("forward", name, 0, {3}, x.data(), 3));
    b["entries"].push_back(ModuleTraceEntry("forward", name, 0, {3}, (moved ? y : x).data(), 3));
  }
  ASSERT_OK(WriteModuleTrace(dir.Join("a.json"), a));
  ASSERT_OK(WriteModuleTrace(dir.Join("b.json"), b));
}

TEST(TraceDiff, NamesTheFirstModuleWhoseOutputDiffers) {
  test::ScratchDir dir;
  WriteTraces(dir);
  TraceDiff d;
  ASSERT_OK(DiffTraceFiles(dir.Join("a.json"), dir.Join("b.json"), Tolerance(), &d));
  ASSERT_TRUE(d.first);
  EXPECT_EQ(d.entries[*d.first].name, "b");
  EXPECT_EQ(TraceDiffJson(d)["first_module"]["name"], "b");
  EXPECT_EQ(d.entries[1].max_ulp, 1u);
  ASSERT_OK(DiffTraceFiles(dir.Join("a.json"), dir.Join("b.json"), {std::nullopt, std::nullopt, 1}, &d));
  EXPECT_TRUE(d.within_tolerance());
  ASSERT_OK(DiffTraceFiles(dir.Join("a.json"), dir.Join("a.json"), Tolerance(), &d));
  EXPECT_TRUE(d.identical());
}

TEST(StepLogView, ParsesRangesAndRefusesBadOnes) {
  StepLogViewOptions o;
  ASSERT_OK(ParseStepRange("5:7", &o));
  EXPECT_EQ(o.first_step, 5);
  EXPECT_EQ(o.last_step, 7);
  ASSERT_OK(ParseStepRange("9:", &o));
  EXPECT_EQ(o.last_step, -1);
  ASSERT_OK(ParseStepRange("3", &o));
  EXPECT_EQ(o.first_step, 3);
  EXPECT_EQ(o.last_step, 3);
  for (const char* bad : {"", "7:5", "0:3", "a:b", "1:2:3", "-1"}) {
    EXPECT_TRUE(ParseStepRange(bad, &o).IsInvalidArgument()) << bad;
  }
}

TEST(StepLogView, ShowsResumesOverridesAndTheChosenRows) {
  test::ScratchDir dir;
  const std::string run = test::Train(dir.Join("run"), "--stop-after-step 8");
  test::Train(dir.Join("run"), "--resume --learning_rate 1e-3 --resume-override");
  StepLogViewOptions o;
  ASSERT_OK(ParseStepRange("10:11", &o));
  o.fields = {"lr", "loss_bits"};
  json r;
  ASSERT_OK(ViewStepLog(run + "/steps.jsonl.zst", o, &r));
  EXPECT_EQ(r["records"], 16);
  ASSERT_EQ(r["rows"].size(), 2u);
  EXPECT_EQ(r["rows"][0]["step"], 10);
  EXPECT_TRUE(r["rows"][0].contains("loss_bits"));
  ASSERT_EQ(r["resumes"].size(), 1u);
  EXPECT_EQ(r["resumes"][0]["after_step"], 8);
  EXPECT_TRUE(r["resumes"][0]["resume_override"].get<bool>());
  EXPECT_EQ(r["override_steps"], json::parse("[[9, 16]]"));
  const std::string text = StepLogViewText(r);
  EXPECT_NE(text.find("steps 9..16 are marked resume_override"), std::string::npos) << text;
  EXPECT_NE(text.find("learning_rate"), std::string::npos) << text;
  // A field no record has is refused, listing those there are (it read freed memory once).
  for (const char* name : {"nope", "kind", "rng.cpu"}) {
    o.fields = {"loss", name};
    const Status st = ViewStepLog(run + "/steps.jsonl.zst", o, &r);
    EXPECT_TRUE(st.IsInvalidArgument()) << name;
    EXPECT_NE(st.message().find("no record of"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("loss_bits"), std::string::npos) << st.message();
  }
}

// The seeded mutants of every format the diff reads, fed to it: a Status or a report,
// never an exception or a crash.
TEST(HostileDiffInputs, SeededMutantsAreReportedNeverThrown) {
  test::ScratchDir dir;
  const std::string run = test::Train(dir.Join("run"));
  WriteTraces(dir);
  const std::string hf = test::HfRun() + "/checkpoint-16/";
  std::mt19937 gen(20261124);
  for (const std::string source : {hf + "model.safetensors", hf + "optimizer.pt", run + "/checkpoint-16/model.h5",
                                   run + "/steps.jsonl.zst", dir.Join("b.json")}) {
    const std::string data = test::ReadAll(source);
    const std::string ext = fs::path(source).extension().string();
    int errors = 0;
    for (int i = 0; i < 40; ++i) {
      Status st;
      if (ext == ".zst") {  // a run whose step log is the mutant
        fs::remove_all(dir.Join("mutant_run"));
        fs::create_directories(dir.Join("mutant_run"));
        test::WriteAll(dir.Join("mutant_run/steps.jsonl.zst"), test::Mutate(data, &gen));
        RunDiff d;
        json view;
        EXPECT_NO_THROW(st = DiffRuns(run, dir.Join("mutant_run"), Tolerance(), &d)) << i;
        EXPECT_NO_THROW(ViewStepLog(dir.Join("mutant_run/steps.jsonl.zst"), StepLogViewOptions(), &view)) << i;
      } else if (ext == ".json") {
        test::WriteAll(dir.Join("mutant.json"), test::Mutate(data, &gen));
        TraceDiff d;
        EXPECT_NO_THROW(st = DiffTraceFiles(dir.Join("a.json"), dir.Join("mutant.json"), Tolerance(), &d)) << i;
      } else {
        const std::string mutant = dir.Join("mutant" + ext);
        test::WriteAll(mutant, test::Mutate(data, &gen));
        CheckpointDiff d;
        EXPECT_NO_THROW(st = DiffCheckpoints(source, mutant, Tolerance(), &d)) << i;
      }
      if (!st.ok()) {
        ++errors;
        EXPECT_FALSE(st.IsIOError()) << st.ToString();  // unreadable input, named, is exit 2
      }
    }
    EXPECT_GT(errors, 0) << source;  // the mutations do reach the readers
  }
}

// Issue 21, finding 9: a valid log of another writer (its header without the trainer's
// fields, values of other types) aborted `inspect` in its text rendering. Seeded mutants of
// the JSON itself, every field of the header and of a record replaced by a value of another
// type, go through the view, its text, the coverage audit and diff without a throw.
TEST(HostileDiffInputs, StepLogsOfOtherShapesAreShownNeverThrown) {
  test::ScratchDir dir;
  const std::string run = test::Train(dir.Join("run"));
  StepLogContents original;
  ASSERT_OK(ReadStepLog(run + "/steps.jsonl.zst", &original));
  const std::vector<json> others = {json(),         json("text"), json::array({1, "x"}),
                                    json::object(), json(-3.5),   json(true)};
  std::mt19937 gen(20261203);
  for (int i = 0; i < 60; ++i) {
    json header = original.header;
    std::vector<json> records = test::Stored(original.records);
    records.resize(4);
    json& target = i % 2 ? header : records[static_cast<size_t>(i) % records.size()];
    auto it = target.begin();
    std::advance(it, static_cast<long>(gen() % target.size()));
    target[it.key()] = others[gen() % others.size()];
    const std::string path = dir.Join("m" + std::to_string(i) + "/steps.jsonl.zst");
    fs::create_directories(fs::path(path).parent_path());
    std::unique_ptr<StepLogWriter> writer;
    ASSERT_OK(StepLogWriter::Create(path, header, StepLogOptions(), &writer));
    for (auto& r : records) ASSERT_OK(writer->Append(r));
    ASSERT_OK(writer->Close());
    StepLogContents log;
    json view;
    RunDiff d;
    EXPECT_NO_THROW({
      if (ReadStepLog(path, &log).ok()) (void)CoverageJson(ComputeCoverage(log, path));
      if (ViewStepLog(path, StepLogViewOptions(), &view).ok()) (void)StepLogViewText(view);
      (void)DiffRuns(run, fs::path(path).parent_path().string(), Tolerance(), &d);
    }) << "mutant "
       << i << ": " << it.key();
  }
}

// Issue 33, finding 7: a deleted rng_state.pth was "cause weights, 1 tensors differ": a file
// one checkpoint lacks is cause missing, naming it.
TEST(HfRunDiff, ADeletedFileIsMissingNotWeights) {
  test::ScratchDir dir;
  const std::string copy = dir.Join("copy");
  fs::copy(test::HfRun(), copy, fs::copy_options::recursive);
  fs::remove(copy + "/checkpoint-16/rng_state.pth");
  RunDiff d;
  ASSERT_OK(DiffRuns(test::HfRun(), copy, Tolerance(), &d));
  ASSERT_TRUE(d.first_divergence.has_value()) << RunDiffText(d, "a", "b");
  EXPECT_EQ(d.first_divergence->cause, "missing") << RunDiffText(d, "a", "b");
  EXPECT_EQ(d.first_divergence->field, "rng_state.pth");
  EXPECT_EQ(d.first_divergence->candidate, "(absent)");
}

// Issue 33, finding 4: the Trainer's train_loss of a resumed run covers only its own steps
// (_total_loss_scalar starts at 0 in every process): with every step and tensor equal, the
// verdict is IDENTICAL, with a note saying why train_loss differs.
TEST(HfRunDiff, TrainLossAloneIsResumeBookkeepingNotADivergence) {
  test::ScratchDir dir;
  const std::string copy = dir.Join("copy");
  fs::copy(test::HfRun(), copy, fs::copy_options::recursive);
  json state;
  ASSERT_OK(ReadJsonFile(copy + "/checkpoint-16/trainer_state.json", &state));
  json summary = {{"epoch", 16}, {"step", 16}, {"train_loss", 4.1}, {"train_runtime", 1.5}, {"total_flos", 1.0}};
  const std::string reference = dir.Join("reference");
  fs::copy(test::HfRun(), reference, fs::copy_options::recursive);
  for (const auto& [run, loss] : {std::make_pair(reference, 4.1), std::make_pair(copy, 3.9)}) {
    json top = state;
    summary["train_loss"] = loss;
    top["log_history"].push_back(summary);
    ASSERT_OK(WriteJsonFile(run + "/trainer_state.json", top));
    ASSERT_OK(WriteJsonFile(run + "/train_results.json", {{"epoch", 16}, {"train_loss", loss}}));
  }
  RunDiff d;
  ASSERT_OK(DiffRuns(reference, copy, Tolerance(), &d));
  EXPECT_TRUE(d.identical()) << RunDiffText(d, "a", "b");
  ASSERT_FALSE(d.notes.empty());
  EXPECT_NE(d.notes[0].find("train_loss differs (reference 4.1, candidate 3.9"), std::string::npos) << d.notes[0];
  EXPECT_NE(d.notes[0].find("_total_loss_scalar"), std::string::npos) << d.notes[0];
}

}  // namespace
}  // namespace lockstep
