// Real runs that differ in one thing at a time, and the cause `lockstep diff` names for
// each; `lockstep replay` re-checking logged steps, catching an edited loss, and tracing
// modules to the one a numerics fault perturbed.
#include <zstd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include <gtest/gtest.h>

#include "diff/module_trace.h"
#include "diff/run_divergence.h"
#include "formats/checkpoint.h"
#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/module_trace.h"
#include "formats/step_log.h"
#include "formats/tensor_file.h"
#include "replay/step_replay.h"
#include "replay/step_replay_check.h"
#include "tests/run_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

TrainingArgs Mlp(const test::ScratchDir& dir, const std::string& name) {
  TrainingArgs a = test::Tiny("mlp", dir.Join(name));
  a.data_seed = 1;
  a.num_threads = 1;
  return a;
}

RunDiff Diff(const std::string& a, const std::string& b, const Tolerance& tol = {}) {
  RunDiff d;
  Status st = DiffRuns(a, b, tol, &d);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return d;
}

// Rewrites the record of `step` in the step log at `path` through `edit`, re-compressing
// only the frame that holds it: every other byte stays, so checkpoints still vouch for it.
void EditStepRecord(const std::string& path, int64_t step, const std::function<void(json*)>& edit) {
  StepLogContents log;
  ASSERT_OK(ReadStepLog(path, &log));
  size_t i = 0;
  while (i < log.records.size() && log.records[i].step != step) ++i;
  ASSERT_LT(i, log.records.size());
  const uint64_t end = log.record_frame_ends[i];
  uint64_t begin = 0;
  for (uint64_t e : log.frame_ends) begin = e < end ? e : begin;
  StepLogContents records;
  ASSERT_OK(ReadStepLogFrame(path, begin, end, &records));
  std::string text;
  size_t event = 0;
  for (size_t k = 0; k < records.records.size(); ++k) {
    for (; event < records.events.size() && records.events[event].steps_before <= k; ++event) {
      text += DumpJson(records.events[event].record) + "\n";
    }
    json r = StepRecordJson(records.records[k]);
    r["kind"] = "step";
    if (records.records[k].step == step) edit(&r);
    text += DumpJson(r) + "\n";
  }
  for (; event < records.events.size(); ++event) text += DumpJson(records.events[event].record) + "\n";
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  std::string frame(ZSTD_compressBound(text.size()), '\0');
  const size_t n = ZSTD_compress2(cctx, &frame[0], frame.size(), text.data(), text.size());
  ZSTD_freeCCtx(cctx);
  ASSERT_FALSE(ZSTD_isError(n));
  const std::string data = test::ReadAll(path);
  test::WriteAll(path, data.substr(0, begin) + frame.substr(0, n) + data.substr(end));
}

// Moves a float32 "0x..." bits string one ULP up.
std::string NextUlp(const json& bits) {
  const uint32_t u = static_cast<uint32_t>(std::stoul(bits.get<std::string>(), nullptr, 16)) + 1;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", u);
  return buf;
}

// Replays steps from+1..from+steps of `run` from its checkpoint-`from`, judged against its
// log; the Status of opening the log or of the replay, and the judge's report.
Status RunReplay(const std::string& run, int64_t from, int64_t steps, ReplayRequest request, ReplayReport* report) {
  std::unique_ptr<ReplayJudge> judge;
  LOCKSTEP_RETURN_IF_ERROR(ReplayJudge::Open(run, from, steps, Tolerance(), &judge));
  request.run_dir = run;
  request.checkpoint = run + "/checkpoint-" + std::to_string(from);
  request.steps = steps;
  request.step_begin = [&](int64_t s, StepRecord* logged) { return judge->Begin(s, logged); };
  request.step_end = [&](const StepRecord& r, bool* stop) { return judge->End(r, stop); };
  ReplayRunInfo info;
  const Status st = ReplayRunSteps(request, &info);
  *report = judge->report();
  return st;
}

ReplayReport Replay(const std::string& run, int64_t from, int64_t steps, ReplayRequest request = {}) {
  ReplayReport report;
  const Status st = RunReplay(run, from, steps, std::move(request), &report);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return report;
}

// Every file under `dir` with its size and XXH3: what "never writes into it" is checked by.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string hex = "dir";
    if (e.is_regular_file()) EXPECT_OK(FileXxh3Hex(e.path().string(), &hex));
    out[e.path().string()] = hex;
  }
  return out;
}

TEST(RunDivergence, ADifferentDataSeedIsData) {
  test::ScratchDir dir;
  TrainingArgs a = Mlp(dir, "a"), b = Mlp(dir, "b");
  b.data_seed = 2;
  test::Train(a);
  test::Train(b);
  const RunDiff d = Diff(a.output_dir, b.output_dir);
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->cause, "data");
  EXPECT_EQ(d.first_divergence->step, 1);
  ASSERT_EQ(d.settings.size(), 1u);
  EXPECT_EQ(d.settings[0].name, "training_args.data_seed");
  const json j = RunDiffJson(d);
  EXPECT_FALSE(j["identical"].get<bool>());
  EXPECT_EQ(j["first_divergence"]["cause"], "data");
  EXPECT_EQ(j["settings_differences"][0]["reference"], 1);
  EXPECT_EQ(j["settings_differences"][0]["candidate"], 2);
}

TEST(RunDivergence, ADifferentSeedWithTheSameDataSeedIsRng) {
  test::ScratchDir dir;
  TrainingArgs a = Mlp(dir, "a"), b = Mlp(dir, "b");
  b.seed = 7;
  test::Train(a);
  test::Train(b);
  const RunDiff d = Diff(a.output_dir, b.output_dir);
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->cause, "rng");
  EXPECT_EQ(d.first_divergence->field.rfind("rng.", 0), 0u) << d.first_divergence->field;
}

TEST(RunDivergence, IdenticalRunsAreIdenticalWithEveryCheckpoint) {
  test::ScratchDir dir;
  test::Train(Mlp(dir, "a"));
  test::Train(Mlp(dir, "b"));
  const RunDiff d = Diff(dir.Join("a"), dir.Join("b"));
  EXPECT_TRUE(d.identical());
  EXPECT_EQ(d.steps_matching, 16);
  EXPECT_EQ(d.checkpoints.size(), 3u);  // 6, 12, 16
}

TEST(RunDivergence, AResumeThatChangedTheLearningRateIsLrAtTheFirstResumedStep) {
  test::ScratchDir dir;
  TrainingArgs a = Mlp(dir, "a"), b = Mlp(dir, "b");
  test::Train(a);
  TrainOptions stop = test::Quiet();
  stop.stop_after_step = 6;
  test::Train(b, stop);
  b.learning_rate = 2e-3;
  TrainOptions resume = test::Quiet();
  resume.resume_from = "";
  resume.resume_override = true;
  test::Train(b, resume);
  const RunDiff d = Diff(a.output_dir, b.output_dir);
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->cause, "lr");
  EXPECT_EQ(d.first_divergence->step, 7);
  EXPECT_EQ(d.steps_matching, 6);
  EXPECT_EQ(d.aftermath.nearest_checkpoint, "checkpoint-6");
  EXPECT_NE(d.aftermath.replay_command.find("--from " + b.output_dir + "/checkpoint-6 --steps 1"), std::string::npos)
      << d.aftermath.replay_command;
  ASSERT_FALSE(d.aftermath.losses.empty());
  EXPECT_EQ(d.aftermath.losses.front().step, 7);
  // The step log's header still states the settings as they were, so the text says what
  // the resume changed, and that it was overridden.
  const std::string text = RunDiffText(d, "a", "b");
  EXPECT_NE(text.find("candidate resumed after step 6 from checkpoint-6 with --resume-override"), std::string::npos)
      << text;
  EXPECT_NE(text.find("learning_rate"), std::string::npos) << text;
  EXPECT_NE(text.find("-> 0.002"), std::string::npos) << text;
}

// A byte that changed in a checkpoint after its save is no divergence of training: where
// the step logs agree, the file that fails its checksum is the cause (damaged), named, on
// whichever side holds it, and no replay is suggested. Each tensor file, each side.
TEST(RunDivergence, AByteChangedInACheckpointAfterItsSaveIsDamageNamingTheFile) {
  test::ScratchDir dir;
  TrainingArgs a = Mlp(dir, "a");
  test::Train(a);
  std::vector<CheckpointDir> checkpoints;
  ASSERT_OK(ListCheckpointDirs(a.output_dir, &checkpoints));
  ASSERT_FALSE(checkpoints.empty());
  const std::string name = fs::path(checkpoints.front().path).filename().string();
  for (const std::string file : {kModelFile, kOptimizerStateFile}) {
    for (const bool in_reference : {true, false}) {
      const std::string copy = dir.Join(file + (in_reference ? ".reference" : ".candidate"));
      fs::copy(a.output_dir, copy, fs::copy_options::recursive);
      const std::string damaged = copy + "/" + name + "/" + file;
      std::vector<TensorExtent> extents;
      bool all_raw = false;
      ASSERT_OK(LocateTensorExtents(damaged, &extents, &all_raw));
      ASSERT_FALSE(extents.empty());
      test::FlipByte(damaged, static_cast<int64_t>(extents.front().offset + extents.front().bytes / 2));
      const RunDiff d = in_reference ? Diff(copy, a.output_dir) : Diff(a.output_dir, copy);
      const std::string text = RunDiffText(d, "a", "b");
      ASSERT_TRUE(d.first_divergence) << file << "\n" << text;
      const Divergence& f = *d.first_divergence;
      EXPECT_EQ(f.cause, "damaged") << file << "\n" << text;
      EXPECT_EQ(f.where, name) << text;
      const std::string& named = in_reference ? f.reference : f.candidate;
      EXPECT_NE(named.find(file + ": checksum"), std::string::npos) << text;
      EXPECT_EQ(in_reference ? f.candidate : f.reference, "(verifies)") << text;
      EXPECT_TRUE(d.aftermath.replay_command.empty()) << text;
    }
  }
}

// A run whose log ends before the first difference (it stopped, or its log was cut) has no
// record of that step to replay against: no replay command is suggested for it.
TEST(RunDivergence, NoReplayIsSuggestedForAStepTheLogDoesNotHold) {
  test::ScratchDir dir;
  TrainingArgs a = Mlp(dir, "a"), b = Mlp(dir, "b");
  test::Train(a);
  TrainOptions stop = test::Quiet();
  stop.stop_after_step = 6;
  test::Train(b, stop);
  const RunDiff d = Diff(a.output_dir, b.output_dir);
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->step, 7);
  EXPECT_EQ(d.aftermath.nearest_checkpoint, "checkpoint-6");
  EXPECT_EQ(d.aftermath.replay_command, "") << d.aftermath.replay_command;
}

TEST(RunDivergence, OneUlpInALoggedLossIsNumericsAndReplayCatchesIt) {
  test::ScratchDir dir;
  const TrainingArgs a = Mlp(dir, "a");
  test::Train(a);
  const std::string edited = dir.Join("edited");
  ASSERT_OK(CopyTree(a.output_dir, edited));
  EditStepRecord(edited + "/" + kStepLogFile, 9, [](json* r) { (*r)["loss_bits"] = NextUlp((*r)["loss_bits"]); });

  RunDiff d = Diff(a.output_dir, edited);
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->cause, "numerics");
  EXPECT_EQ(d.first_divergence->step, 9);
  EXPECT_EQ(d.first_divergence->field, "loss_bits");
  EXPECT_EQ(d.numerics["loss"]["ulp_float32"], 1);
  EXPECT_FALSE(d.within_tolerance());
  d = Diff(a.output_dir, edited, {std::nullopt, std::nullopt, 1});
  EXPECT_TRUE(d.within_tolerance());  // one ULP, and nothing else differs

  // The untouched run replays bit for bit; the edited log is caught at step 9.
  EXPECT_TRUE(Replay(a.output_dir, 6, 6).passed());
  const auto before = Snapshot(edited);
  const ReplayReport r = Replay(edited, 6, 6);
  EXPECT_FALSE(r.passed());
  ASSERT_TRUE(r.first_mismatch);
  EXPECT_EQ(r.first_mismatch->step, 9);
  EXPECT_EQ(r.first_mismatch->field, "loss_bits");
  EXPECT_EQ(r.first_mismatch->numerics["loss"]["ulp_float32"], 1);
  EXPECT_EQ(r.steps_replayed, 3);       // 7, 8, then the mismatch at 9 ends it
  EXPECT_EQ(Snapshot(edited), before);  // replay never writes into the run directory
}

TEST(RunDivergence, LogsThatAgreeWithACheckpointThatDoesNotIsWeights) {
  test::ScratchDir dir;
  const TrainingArgs a = Mlp(dir, "a");
  test::Train(a);
  const std::string edited = dir.Join("edited");
  ASSERT_OK(CopyTree(a.output_dir, edited));
  std::vector<TensorData> tensors;
  ASSERT_OK(ReadTensorFile(edited + "/checkpoint-12/model.h5", &tensors));
  tensors[0].bytes[0] ^= 1;  // one bit of one weight, which no logged loss shows
  WrittenFile written;
  ASSERT_OK(WriteTensorFile(edited + "/checkpoint-12/model.h5", tensors, &written));
  // Saved so, not changed after the save: the manifest vouches for the new bytes (a file its
  // manifest does not vouch for is damage, AByteChangedInACheckpointAfterItsSaveIs...).
  json manifest;
  ASSERT_OK(ReadJsonFile(edited + "/checkpoint-12/" + kManifestFile, &manifest));
  for (auto& f : manifest["files"]) {
    if (f["path"] != kModelFile) continue;
    f["size"] = written.size;
    f["xxh3_128"] = written.xxh3_128;
  }
  ASSERT_OK(WriteJsonFile(edited + "/checkpoint-12/" + kManifestFile, manifest));
  const RunDiff d = Diff(a.output_dir, edited);
  ASSERT_TRUE(d.first_divergence);
  EXPECT_EQ(d.first_divergence->cause, "weights");
  EXPECT_EQ(d.first_divergence->step, 12);
  EXPECT_EQ(d.first_divergence->field.rfind(tensors[0].name + "[", 0), 0u) << d.first_divergence->field;
  EXPECT_EQ(d.steps_matching, 16);  // every step record agrees
  EXPECT_EQ(d.aftermath.nearest_checkpoint, "checkpoint-6");
}

// Writes run_dir/steps.jsonl.zst: `header`, then records of steps first..last (a loss each).
void WriteLog(const std::string& run_dir, const json& header, int64_t first, int64_t last) {
  fs::create_directories(run_dir);
  std::unique_ptr<StepLogWriter> w;
  ASSERT_OK(StepLogWriter::Create(run_dir + "/" + kStepLogFile, header, StepLogOptions(), &w));
  for (int64_t step = first; step <= last; ++step) {
    ASSERT_OK(w->Append({{"step", step}, {"batches", json::array({json::array({step})})}, {"loss", 0.5 * step}}));
  }
  ASSERT_OK(w->Close());
}

// A run resumed into a new directory has a log that begins after its checkpoint's step and
// says so (resumed_from_step): it is compared from there. A log that lacks its early steps
// without saying why is a difference.
TEST(RunDivergence, ALogThatSaysItBeginsLaterIsComparedFromItsFirstStep) {
  test::ScratchDir dir;
  const json header = {{"training_args", {{"seed", 0}}}};
  WriteLog(dir.Join("whole"), header, 1, 8);
  json resumed = header;
  resumed["resumed_from_step"] = 5;
  WriteLog(dir.Join("elsewhere"), resumed, 6, 8);
  WriteLog(dir.Join("truncated"), header, 6, 8);

  RunDiff d = Diff(dir.Join("whole"), dir.Join("elsewhere"));
  EXPECT_TRUE(d.identical()) << RunDiffText(d, "whole", "elsewhere");
  EXPECT_EQ(d.compared_from_step, 6);
  EXPECT_EQ(d.steps_matching, 3);
  EXPECT_TRUE(d.settings.empty()) << d.settings.front().name;  // where a log begins is no setting

  d = Diff(dir.Join("whole"), dir.Join("truncated"));
  ASSERT_FALSE(d.identical());
  EXPECT_EQ(d.compared_from_step, 1);
  EXPECT_EQ(d.first_divergence->step, 1) << d.first_divergence->ToString();
}

TEST(Replay, RestoresLoggedFullRngStatesAndChecksDigestsBetween) {
  test::ScratchDir dir;
  TrainingArgs a = Mlp(dir, "a");
  a.dropout = 0.5;  // the CPU generator is drawn every step
  TrainOptions o = test::Quiet();
  o.rng_full_state_every = 3;
  test::Train(a, o);
  const ReplayReport r = Replay(a.output_dir, 6, 10);
  EXPECT_TRUE(r.passed());
  EXPECT_EQ(r.steps_replayed, 10);
  EXPECT_GT(r.full_rng_restores, 0);
  EXPECT_GT(r.digest_checks, 0);
}

TEST(Replay, ADamagedCheckpointIsCorruptionNamingIt) {
  test::ScratchDir dir;
  const TrainingArgs a = Mlp(dir, "a");
  test::Train(a);
  test::FlipByte(a.output_dir + "/checkpoint-6/model.h5", 200);
  ReplayReport report;
  const Status st = RunReplay(a.output_dir, 6, 2, ReplayRequest(), &report);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("model.h5"), std::string::npos) << st.ToString();
  EXPECT_TRUE(RunReplay(a.output_dir, 12, 10, ReplayRequest(), &report).IsInvalidArgument());  // past the end
}

// RUN's step log replaced after the checkpoint was saved (here by another seed's log, whole
// and readable): the checkpoint's digest of the log finds it, and the error names RUN's
// log, not the scratch copy the resume would continue.
TEST(Replay, ARunLogThatIsNotTheOneItsCheckpointSavedIsNamed) {
  test::ScratchDir dir;
  const TrainingArgs a = Mlp(dir, "a");
  TrainingArgs b = Mlp(dir, "b");
  b.seed = a.seed + 1;
  test::Train(a);
  test::Train(b);
  const std::string log = a.output_dir + "/" + kStepLogFile;
  test::WriteAll(log, test::ReadAll(b.output_dir + "/" + kStepLogFile));
  ReplayReport report;
  const Status st = RunReplay(a.output_dir, 6, 2, ReplayRequest(), &report);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find(log + " does not begin with the step log " + a.output_dir + "/checkpoint-6 saved"),
            std::string::npos)
      << st.ToString();
}

// Seeded mutants of the step log a replay reads: a Status (the log damaged, or a mismatch
// reported), never an exception or a crash, and never a write into the run.
TEST(Replay, SeededMutantsOfTheStepLogAreAStatusOrAMismatchNeverACrash) {
  test::ScratchDir dir;
  const TrainingArgs a = Mlp(dir, "a");
  test::Train(a);
  const std::string log = a.output_dir + "/" + kStepLogFile;
  const std::string original = test::ReadAll(log);
  std::mt19937 gen(20261124);
  int errors = 0, mismatches = 0;
  for (int i = 0; i < 25; ++i) {
    test::WriteAll(log, test::Mutate(original, &gen));
    Status st;
    ReplayReport report;
    EXPECT_NO_THROW(st = RunReplay(a.output_dir, 6, 4, ReplayRequest(), &report)) << i;
    mismatches += st.ok() && !report.passed();
    errors += !st.ok();
    if (!st.ok()) EXPECT_NE(st.message().find(kStepLogFile), std::string::npos) << st.ToString();
  }
  EXPECT_GT(errors + mismatches, 0);
  test::WriteAll(log, original);
  EXPECT_TRUE(Replay(a.output_dir, 6, 4).passed());
}

TEST(Replay, TraceModulesNamesTheModuleANumericsFaultPerturbed) {
  test::ScratchDir dir;
  TrainingArgs a = test::Tiny("gpt", dir.Join("gpt"));
  a.n_layer = 2;
  a.num_threads = 1;
  test::Train(a);
  for (const std::string fault : {"", "h.1.attn"}) {
    json trace = {{"step", 7}, {"entries", json::array()}};
    ReplayRequest request;
    request.trace_step = 7;
    request.on_trace = [&trace](const json& e) { trace["entries"].push_back(e); };
    request.numerics_fault_module = fault;
    Replay(a.output_dir, 6, 1, request);
    ASSERT_OK(WriteModuleTrace(dir.Join(fault.empty() ? "plain.json" : "fault.json"), trace));
  }
  TraceDiff d;
  ASSERT_OK(DiffTraceFiles(dir.Join("plain.json"), dir.Join("plain.json"), Tolerance(), &d));
  EXPECT_TRUE(d.identical());
  ASSERT_OK(DiffTraceFiles(dir.Join("plain.json"), dir.Join("fault.json"), Tolerance(), &d));
  ASSERT_TRUE(d.first);
  EXPECT_EQ(d.entries[*d.first].kind, "forward");
  EXPECT_EQ(d.entries[*d.first].name, "h.1.attn");
  // Everything before it in execution order agrees, including h.1.attn's own insides.
  for (size_t i = 0; i < *d.first; ++i) EXPECT_EQ(d.entries[i].status, "equal") << d.entries[i].name;
  EXPECT_EQ(d.entries[*d.first - 1].name, "h.1.attn.c_proj");
}

// Issue 33, finding 6: a loop that does not seed NumPy (its state differs between any two
// processes and never moves), resumed without its scheduler: the lr changed, and the idle
// generator must not outrank it ("DIVERGED ... rng.numpy" although NumPy never moved).
TEST(RunDiff, AnIdleGeneratorNeverOutranksAFieldThatChanged) {
  test::ScratchDir dir;
  TrainingArgs a = Mlp(dir, "a");
  a.max_steps = 8;
  TrainingArgs b = a;
  b.output_dir = dir.Join("b");
  test::Train(a);
  test::Train(b);
  for (const auto& [run, digest] : {std::make_pair(dir.Join("a"), "aa"), std::make_pair(dir.Join("b"), "bb")}) {
    for (int64_t step = 1; step <= 8; ++step) {
      EditStepRecord(run + "/steps.jsonl.zst", step, [&, d = std::string(digest)](json* r) {
        (*r)["rng"]["numpy"] = {{"size", 2508}, {"xxh3_128", d}};
        if (step >= 5 && d == "bb") (*r)["lr"] = (*r)["lr"].get<double>() * 1.5;
      });
    }
  }
  const RunDiff d = Diff(dir.Join("a"), dir.Join("b"));
  ASSERT_TRUE(d.first_divergence.has_value()) << RunDiffText(d, "a", "b");
  EXPECT_EQ(d.first_divergence->step, 5);
  EXPECT_EQ(d.first_divergence->cause, "lr") << RunDiffText(d, "a", "b");
  bool noted = false;
  for (const auto& n : d.notes) noted |= n.find("rng.numpy differs from step 1, but neither run drew from it") == 0;
  EXPECT_TRUE(noted) << RunDiffText(d, "a", "b");
}

}  // namespace
}  // namespace lockstep
