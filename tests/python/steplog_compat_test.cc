// The Python package writes Lockstep's step log byte for byte as the C++ writer does (issue
// 14): the same vectors (a header with unicode and awkward floats, records with raw states,
// events, flushes mid-frame) written by formats/step_log_writer.cc and by
// python/lockstep/steplog.py give identical files. And a plain PyTorch loop recorded with
// lockstep.Recorder is read by `lockstep diff`: two runs are identical, another seed is named.
// Needs Debian's python3-torch, python3-zstandard and python3-xxhash (scripts/install-deps.sh);
// without them the tests are skipped, saying so.
#include <gtest/gtest.h>

#include <string>

#include "formats/base64.h"
#include "formats/json_file.h"
#include "formats/step_log.h"
#include "tests/python_env.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

using nlohmann::json;

using test::kPython;
using test::PythonMissing;

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31);
  return v;
}

TEST(StepLogCompat, PythonWritesTheCxxWritersBytes) {
  const std::string missing = PythonMissing("zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const json header = {{"training_args", {{"name", "ünïcödé ✓"}, {"lr", 1e-05}, {"big", 1e+21}, {"f", 2.0}}},
                       {"rng_full_state_every", 100}};
  json vectors = {{"header", header}, {"records_per_frame", 4}, {"entries", json::array()}};
  std::unique_ptr<StepLogWriter> log;
  StepLogOptions o;
  o.records_per_frame = 4;
  ASSERT_OK(StepLogWriter::Create(dir.Join("cxx.zst"), header, o, &log));
  for (int step = 1; step <= 11; ++step) {
    const float loss = 2.0f / static_cast<float>(step) + 1e-7f * static_cast<float>(step * step);
    const std::vector<uint8_t> state = Pattern(5056, static_cast<uint8_t>(step));
    json record = {{"step", step},     {"batches", {{step, step + 1}, {-1, 1LL << 40}}},
                   {"loss", loss},     {"loss_bits", FloatBits(loss)},
                   {"lr", 0.1 * step}, {"rng", {{"cpu", json::binary(state)}}}};
    json as_vector = record;
    as_vector["rng"]["cpu"] = {{"__bytes_base64__", Base64Encode(state)}};
    ASSERT_OK(log->Append(record));
    vectors["entries"].push_back({{"op", "step"}, {"record", as_vector}});
    if (step == 6) {
      ASSERT_OK(log->AppendEvent("resume", {{"after_step", 6}}));
      vectors["entries"].push_back({{"op", "event"}, {"kind", "resume"}, {"record", {{"after_step", 6}}}});
    }
    if (step == 5 || step == 9) {
      ASSERT_OK(log->Flush(true));
      vectors["entries"].push_back({{"op", "flush"}});
    }
  }
  ASSERT_OK(log->Close());
  ASSERT_OK(WriteJsonFile(dir.Join("vectors.json"), vectors));
  const auto o2 =
      test::RunCommand(kPython + " " + std::string(LOCKSTEP_SOURCE_DIR) + "/tests/python/write_vectors.py " +
                       dir.Join("vectors.json") + " " + dir.Join("py.zst"));
  ASSERT_EQ(o2.code, 0) << o2.out;
  const std::string cxx = test::ReadAll(dir.Join("cxx.zst")), py = test::ReadAll(dir.Join("py.zst"));
  EXPECT_GT(cxx.size(), 100u);
  EXPECT_TRUE(cxx == py) << "the Python writer's " << py.size() << " bytes differ from the C++ writer's " << cxx.size();
  StepLogContents read;
  ASSERT_OK(ReadStepLog(dir.Join("py.zst"), &read));
  EXPECT_EQ(read.records.size(), 11u);
  EXPECT_EQ(read.events.size(), 1u);
}

TEST(PythonRecorder, TwoRunsAreIdenticalAndAnotherSeedIsNamedByDiff) {
  const std::string missing = PythonMissing("torch, numpy, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string loop = kPython + " " + std::string(LOCKSTEP_SOURCE_DIR) + "/tests/python/plain_loop.py ";
  for (const auto& [name, seed] : {std::make_pair("a", "0"), std::make_pair("b", "0"), std::make_pair("c", "1")}) {
    const auto o = test::RunCommand(loop + dir.Join(name) + " " + seed + " 25");
    ASSERT_EQ(o.code, 0) << o.out;
  }
  StepLogContents log;
  ASSERT_OK(ReadStepLog(dir.Join("a/steps.jsonl.zst"), &log));
  ASSERT_EQ(log.records.size(), 25u);
  for (const char* gen : {"cpu", "python", "numpy"})
    EXPECT_TRUE(StepRecordJson(log.records[1])["rng"].contains(gen)) << gen;
  EXPECT_TRUE(StepRecordJson(log.records[0])["rng"]["cpu"].contains("base64"));  // step 1 keeps the full state
  auto o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff " + dir.Join("a") + " " + dir.Join("b"));
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("IDENTICAL: 25 steps bit for bit"), std::string::npos) << o.out;
  o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff " + dir.Join("a") + " " + dir.Join("c") + " --json");
  EXPECT_EQ(o.code, 1) << o.out;
  const json report = json::parse(o.out);
  EXPECT_EQ(report["first_divergence"]["step"], 1);
  // Every generator starts elsewhere: the first field to differ is the CPU generator's state
  // as step 1 begins, before the ids it then drew.
  EXPECT_EQ(report["first_divergence"]["cause"], "rng");
  EXPECT_EQ(report["first_divergence"]["field"], "rng.cpu.xxh3_128");
}

// Issue 21, finding 7: a script that imports NumPy but never seeds or uses it. Its state comes
// from the OS, so it differs between any two runs, but it never moves: two runs that train
// bit-identically were "DIFFERENT at step 1, cause rng (rng.numpy)". Differences confined to
// a generator that was never drawn from are a note; where the runs also part, it is named.
TEST(PythonRecorder, AGeneratorNeverDrawnFromIsANoteNotACause) {
  const std::string missing = PythonMissing("torch, numpy, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string loop = kPython + " " + std::string(LOCKSTEP_SOURCE_DIR) + "/tests/python/plain_loop.py ";
  for (const auto& [name, seed] : {std::make_pair("a", "0"), std::make_pair("b", "0"), std::make_pair("c", "1")}) {
    const auto o = test::RunCommand(loop + dir.Join(name) + " " + seed + " 12 --idle-numpy");
    ASSERT_EQ(o.code, 0) << o.out;
  }
  StepLogContents a, b;
  ASSERT_OK(ReadStepLog(dir.Join("a/steps.jsonl.zst"), &a));
  ASSERT_OK(ReadStepLog(dir.Join("b/steps.jsonl.zst"), &b));
  ASSERT_NE(StepRecordJson(a.records[0])["rng"]["numpy"]["xxh3_128"],
            StepRecordJson(b.records[0])["rng"]["numpy"]["xxh3_128"]);  // the premise
  auto o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff " + dir.Join("a") + " " + dir.Join("b"));
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("IDENTICAL: 12 steps bit for bit"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("note: rng.numpy differs from step 1, but neither run drew from it"), std::string::npos)
      << o.out;
  // Another seed: the runs part, and the first difference is still a generator's.
  o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff " + dir.Join("a") + " " + dir.Join("c") + " --json");
  EXPECT_EQ(o.code, 1) << o.out;
  const json report = json::parse(o.out);
  EXPECT_EQ(report["first_divergence"]["step"], 1);
  EXPECT_EQ(report["first_divergence"]["cause"], "rng");
  EXPECT_EQ(report["first_divergence"]["field"], "rng.cpu.xxh3_128") << o.out;
}

// Issue 21, finding 9 and 15: `lockstep inspect` of a log the Python Recorder wrote (a header
// without the trainer's fields) aborted with "cannot use value() with null"; the rng column
// printed kilobytes of base64; unknown --fields and --steps beyond the log were accepted.
TEST(PythonRecorder, InspectShowsItsLog) {
  const std::string missing = PythonMissing("torch, numpy, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string loop = kPython + " " + std::string(LOCKSTEP_SOURCE_DIR) + "/tests/python/plain_loop.py ";
  ASSERT_EQ(test::RunCommand(loop + dir.Join("a") + " 0 12").code, 0);
  const std::string inspect = std::string(LOCKSTEP_BIN) + " inspect " + dir.Join("a/steps.jsonl.zst");
  auto o = test::RunCommand(inspect + " --fields loss,rng");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("12 steps (1..12)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("written by lockstep.Recorder (python)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find(" cpu:"), std::string::npos) << o.out;  // a digest per generator
  for (size_t begin = 0, end; (end = o.out.find('\n', begin)) != std::string::npos; begin = end + 1) {
    EXPECT_LT(end - begin, 160u) << o.out.substr(begin, end - begin);
  }
  o = test::RunCommand(inspect + " --fields loss,nope");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--fields nope: no record of"), std::string::npos) << o.out;
  o = test::RunCommand(inspect + " --steps 1000:2000");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("has steps 1..12"), std::string::npos) << o.out;
}

// Issue 21, finding 15: settings are often NumPy scalars (a seed from np.random, a config read
// with NumPy); Recorder(settings={"seed": np.int64(3)}) raised TypeError.
TEST(PythonRecorder, NumPyAndTorchScalarsAreSettings) {
  const std::string missing = PythonMissing("torch, numpy, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const auto o = test::RunCommand(kPython + " -c 'import numpy as np, torch, lockstep; r = lockstep.Recorder(\"" +
                                  dir.Join("run") +
                                  "\", settings={\"seed\": np.int64(3), \"lr\": np.float32(0.5), "
                                  "\"betas\": np.array([0.9, 0.5]), \"steps\": torch.tensor(7)}); r.close()' 2>&1");
  ASSERT_EQ(o.code, 0) << o.out;
  json header;
  ASSERT_OK(ReadStepLogHeader(dir.Join("run/steps.jsonl.zst"), &header));
  EXPECT_EQ(header["training_args"]["seed"], 3);
  EXPECT_EQ(header["training_args"]["lr"], 0.5);
  EXPECT_EQ(header["training_args"]["betas"], json({0.9, 0.5}));
  EXPECT_EQ(header["training_args"]["steps"], 7);
}

// A resume recorded and cut correctly: a run killed after step 17 and resumed from its
// checkpoint at 10 keeps records 1..10, drops 11..17, and continues into the same run; the
// classic resume bug (generators not restored) is caught at the first resumed step, and
// named as the generators.
TEST(PythonRecorder, AResumeIsCutAndContinuedAndAForgottenRngIsCaughtAtItsStep) {
  const std::string missing = PythonMissing("torch, numpy, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string loop = kPython + " " + std::string(LOCKSTEP_SOURCE_DIR) + "/tests/python/plain_loop.py ";
  ASSERT_EQ(test::RunCommand(loop + dir.Join("whole") + " 0 25").code, 0);
  for (const char* name : {"resumed", "buggy"}) {
    ASSERT_EQ(test::RunCommand(loop + dir.Join(name) + " 0 17").code, 0);  // "killed" after 17
    const auto o = test::RunCommand(loop + dir.Join(name) + " 0 25 --resume 10" +
                                    (std::string(name) == "buggy" ? " --forget-rng" : ""));
    ASSERT_EQ(o.code, 0) << o.out;
  }
  StepLogContents log;
  ASSERT_OK(ReadStepLog(dir.Join("resumed/steps.jsonl.zst"), &log));
  ASSERT_EQ(log.records.size(), 25u);
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].steps_before, 10u);
  EXPECT_EQ(log.events[0].record["after_step"], 10);
  auto o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff " + dir.Join("whole") + " " + dir.Join("resumed"));
  EXPECT_EQ(o.code, 0) << o.out;
  o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff " + dir.Join("whole") + " " + dir.Join("buggy") + " --json");
  EXPECT_EQ(o.code, 1) << o.out;
  const json report = json::parse(o.out);
  EXPECT_EQ(report["first_divergence"]["step"], 11);
  EXPECT_EQ(report["first_divergence"]["cause"], "rng") << report["first_divergence"].dump();
}

// `lockstep verify-resume --quiet --json` over tests/python/plain_loop.py with `loop_args`,
// into `output_dir`, each interrupted run resumed with `resume_arg`.
test::CommandOutput VerifyPlainLoop(const std::string& loop_args, int kill_random, const std::string& output_dir,
                                    const std::string& resume_arg) {
  const std::string cmd =
      kPython + " " + std::string(LOCKSTEP_SOURCE_DIR) + "/tests/python/plain_loop.py {output_dir} " + loop_args;
  return test::RunCommand(std::string(LOCKSTEP_BIN) + " verify-resume --quiet --json --kill-random " +
                          std::to_string(kill_random) + " --cmd '" + cmd + "' --output_dir " + output_dir +
                          " --resume-arg '" + resume_arg + "'");
}

// `lockstep verify-resume --cmd` on a plain PyTorch script: it resumes correctly, so every
// variant (a SIGTERM after the first checkpoint, a SIGKILL) is BIT-EXACT; with the classic
// bug in its resume (--forget-rng), the SIGTERM variant diverges at the first step after
// checkpoint-10, and the cause is named: the generators.
TEST(VerifyCmd, APlainScriptResumesBitExactAndAForgottenRngIsCaughtAtItsStep) {
  const std::string missing = PythonMissing("torch, numpy, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  auto o = VerifyPlainLoop("0 80", 1, dir.Join("good"), "--resume {checkpoint}");
  ASSERT_EQ(o.code, 0) << o.out;
  json report = json::parse(o.out);
  EXPECT_EQ(report["bit_exact"], true);
  ASSERT_EQ(report["variants"].size(), 2u);
  EXPECT_EQ(report["variants"][0]["name"], "sigterm");
  EXPECT_EQ(report["variants"][0]["compared_by"], "step log");

  o = VerifyPlainLoop("0 80", 1, dir.Join("bug"), "--resume {checkpoint} --forget-rng");
  ASSERT_EQ(o.code, 1) << o.out;
  report = json::parse(o.out);
  const json& sigterm = report["variants"][0];
  EXPECT_EQ(sigterm["resumed_from"], dir.Join("bug/sigterm/checkpoint-10"));
  EXPECT_EQ(sigterm["first_divergence"]["step"], 11) << sigterm.dump();
  EXPECT_EQ(sigterm["first_divergence"]["cause"], "rng");

  EXPECT_TRUE(test::FileExists(dir.Join("bug/verify_report.json")));  // issue 21, finding 12

  o = test::RunCommand(std::string(LOCKSTEP_BIN) +
                       " verify-resume --cmd 'true' --resume-arg 'x {checkpoint}' --output_dir " + dir.Join("usage"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("put {output_dir} in it"), std::string::npos) << o.out;
}

// Issue 21, finding 12: a script that checkpoints only at its last step. Every interruption
// lands after that checkpoint, so every resume trains nothing: no variant counts, and there
// is no verdict (it used to read "resumed from checkpoint-10 ... BIT-EXACT"). A resume
// command that fails is bad input (2), not a divergence (1).
TEST(VerifyCmd, AResumeThatTrainsNothingProvesNothingAndAFailingResumeIsBadInput) {
  const std::string missing = PythonMissing("torch, numpy, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  auto o = VerifyPlainLoop("0 10", 2, dir.Join("late"), "--resume {checkpoint}");
  EXPECT_EQ(o.code, 1) << o.out;
  json report = json::parse(o.out);
  EXPECT_EQ(report["bit_exact"], false);
  EXPECT_EQ(report["variants_counted"], 0) << report.dump();
  for (const auto& v : report["variants"]) EXPECT_EQ(v["counted"], false) << v.dump();
  ASSERT_TRUE(test::FileExists(dir.Join("late/verify_report.json")));
  EXPECT_EQ(json::parse(test::ReadAll(dir.Join("late/verify_report.json")))["variants_counted"], 0);
  o = test::RunCommand(std::string(LOCKSTEP_BIN) + " verify-resume --quiet --kill-random 0 --cmd '" + kPython + " " +
                       std::string(LOCKSTEP_SOURCE_DIR) +
                       "/tests/python/plain_loop.py {output_dir} 0 10' --output_dir " + dir.Join("late-text") +
                       " --resume-arg '--resume {checkpoint}'");
  EXPECT_NE(o.out.find("verdict: NOT PROVEN"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("BIT-EXACT"), std::string::npos) << o.out;

  o = VerifyPlainLoop("0 40", 0, dir.Join("failing"), "--resume {checkpoint}/nope");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("sigterm-resumed: the command failed (exit 1)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("nope"), std::string::npos) << "the script's last words name the bad path:\n" << o.out;
}

// Without a Lockstep recording, runs are compared as HF's output is: by trainer_state.json's
// log_history and the checkpoints' tensors. The script resumes correctly: BIT-EXACT. With the
// forgotten RNG restore the first resumed step's logged numbers differ (the symptom: without
// a recording no cause can be named, so the cause is "unknown", never "numerics", which
// would claim equal data and RNG), and the later checkpoints' tensors do.
TEST(VerifyCmd, AnUnrecordedScriptIsComparedByLogHistoryAndCheckpointTensors) {
  const std::string missing = PythonMissing("torch, numpy");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  auto o = VerifyPlainLoop("0 40 --unrecorded", 0, dir.Join("good"), "--resume {checkpoint}");
  ASSERT_EQ(o.code, 0) << o.out;
  json report = json::parse(o.out);
  EXPECT_EQ(report["variants"][0]["compared_by"], "log_history");
  EXPECT_EQ(report["bit_exact"], true);

  o = VerifyPlainLoop("0 40 --unrecorded", 0, dir.Join("bug"), "--resume {checkpoint} --forget-rng");
  ASSERT_EQ(o.code, 1) << o.out;
  report = json::parse(o.out);
  const json& first = report["variants"][0]["first_divergence"];
  // The SIGTERM comes after the first checkpoint; under load the script may have saved the
  // next one by then, and the resume starts from the newest: the divergence follows it.
  const std::string resumed = report["variants"][0]["resumed_from"].get<std::string>();
  const int64_t from = std::stoll(resumed.substr(resumed.rfind('-') + 1));
  ASSERT_TRUE(from == 10 || from == 20 || from == 30) << resumed;
  EXPECT_EQ(first["step"], from + 1) << first.dump();
  EXPECT_EQ(first["cause"], "unknown") << first.dump();  // issue 21: data and rng were not compared
  o = test::RunCommand(std::string(LOCKSTEP_BIN) + " diff --json " + dir.Join("bug/reference") + " " +
                       dir.Join("bug/sigterm"));
  ASSERT_EQ(o.code, 1) << o.out;
  report = json::parse(o.out);
  ASSERT_TRUE(report["checkpoints"].is_array()) << report.dump();
  int differing = 0;
  for (const auto& c : report["checkpoints"]) differing += c["identical"] == false;
  // Every checkpoint after the resume (of 10, 20, 30, 40): the weights moved apart.
  EXPECT_EQ(differing, (40 - from) / 10) << report["checkpoints"].dump();
}

}  // namespace
}  // namespace lockstep
