// lockstep.hf.LockstepCallback (issue 14). Its contract with the Trainer is tested by a
// stand-in that drives it in transformers' event order, and against the real Trainer of the
// project's .venv (scripts/python-env.sh; CI always has it, a machine without PyPI skips with
// the reason); tests/python/hf_trainer_matrix_test.cc runs the real Trainer scenario by scenario.
#include <gtest/gtest.h>

#include <string>

#include "formats/step_log.h"
#include "tests/python_env.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

using nlohmann::json;

std::string Lockstep(const std::string& args) { return std::string(LOCKSTEP_BIN) + " " + args; }

std::vector<size_t> WindowSizes(const StepLogContents& log) {
  std::vector<size_t> sizes;
  for (const auto& r : test::Stored(log.records)) sizes.push_back(r["batches"].size());
  return sizes;
}

// Every step's batches are the ids the loop used (the script checks), a run with the callback
// is bit-identical to one without, a mid-epoch resume into the same directory cuts the log and
// is IDENTICAL to the whole run (as is one resumed into a new directory, compared from its
// first step), and a collator drawing from torch's generator (restored by HF
// after the resumed window is fetched) is caught at the first resumed step, as rng.
TEST(HfCallback, KeepsTheTrainersContract) {
  const std::string missing = test::PythonMissing("torch, numpy, zstandard, xxhash");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  auto o = test::RunCommand(test::PythonScript("hf_callback_contract.py") + " " + dir.path());
  ASSERT_EQ(o.code, 0) << o.out;
  StepLogContents log;
  ASSERT_OK(ReadStepLog(dir.Join("short/steps.jsonl.zst"), &log));
  EXPECT_EQ(WindowSizes(log), (std::vector<size_t>{3, 3, 3, 3, 1, 3, 3, 3, 3, 1, 3, 3, 3, 3, 1}));
  ASSERT_OK(ReadStepLog(dir.Join("resumed/steps.jsonl.zst"), &log));
  ASSERT_EQ(log.records.size(), 12u);
  ASSERT_EQ(log.events.size(), 1u);
  EXPECT_EQ(log.events[0].record["after_step"], 9);

  o = test::RunCommand(Lockstep("diff " + dir.Join("whole") + " " + dir.Join("resumed")));
  EXPECT_EQ(o.code, 0) << o.out;
  o = test::RunCommand(Lockstep("diff --json " + dir.Join("whole") + " " + dir.Join("fresh")));
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_EQ(json::parse(o.out)["compared_from_step"], 10) << o.out;
  // With DataLoader workers fetching ahead, the ids are still those of the batches used.
  test::ScratchDir workers;
  o = test::RunCommand(test::PythonScript("hf_callback_contract.py") + " " + workers.path() + " --workers 2");
  ASSERT_EQ(o.code, 0) << o.out;
  o = test::RunCommand(Lockstep("diff " + workers.Join("whole") + " " + dir.Join("whole")));
  EXPECT_EQ(o.code, 0) << o.out;
  o = test::RunCommand(Lockstep("diff --json " + dir.Join("whole_masking") + " " + dir.Join("resumed_masking")));
  ASSERT_EQ(o.code, 1) << o.out;
  const json first = json::parse(o.out)["first_divergence"];
  EXPECT_EQ(first["step"], 10) << first.dump();
  EXPECT_EQ(first["cause"], "rng") << first.dump();

  // Issue 21, coverage: the correct resume drew every sample once an epoch (HF's epoch is
  // counted after the step); the resume with ignore_data_skip drew its epoch's first windows
  // again, which the run's own log shows.
  o = test::RunCommand(Lockstep("inspect --json " + dir.Join("resumed")));
  json coverage = json::parse(o.out.substr(o.out.find('{')))["findings"]["coverage"];
  EXPECT_EQ(coverage["dataset_size"], 48) << coverage.dump();
  ASSERT_EQ(coverage["epochs"].size(), 3u) << coverage.dump();
  for (const auto& e : coverage["epochs"]) {
    EXPECT_EQ(e["repeated"], 0) << e.dump();
    EXPECT_EQ(e["never"], 0) << e.dump();
    EXPECT_EQ(e["drawn"], 48) << e.dump();
  }
  EXPECT_EQ(coverage["epochs"][2]["first_step"], 9);
  o = test::RunCommand(Lockstep("inspect " + dir.Join("resumed_no_skip")));
  EXPECT_EQ(o.code, 1) << o.out;
  EXPECT_NE(o.out.find("epoch 2 (steps 9..12): 12 sample ids drawn more than once, from step 10"), std::string::npos)
      << o.out;
}

// The real Trainer (transformers installed): the callback records every optimizer step with
// its accumulation window, changes nothing (the runs with and without it are IDENTICAL by
// log_history and checkpoint tensors), and `verify-resume --cmd` checks the script's resume
// step by step. What it finds about HF's resume is printed: it is a finding, not a contract.
TEST(HfCallback, RecordsARealTrainerRunWithoutChangingItAndVerifiesItsResume) {
  const std::string missing =
      test::PythonMissing("torch, numpy, zstandard, xxhash, transformers, accelerate",
                          "the Hugging Face Trainer is not installed here: scripts/python-env.sh makes .venv with it");
  if (!missing.empty()) GTEST_SKIP() << missing;
  test::ScratchDir dir;
  const std::string script = test::PythonScript("hf_trainer.py");
  auto o = test::RunCommand(script + " --output_dir " + dir.Join("with"));
  ASSERT_EQ(o.code, 0) << o.out;
  o = test::RunCommand(script + " --no-lockstep --output_dir " + dir.Join("without"));
  ASSERT_EQ(o.code, 0) << o.out;
  StepLogContents log;
  ASSERT_OK(ReadStepLog(dir.Join("with/steps.jsonl.zst"), &log));
  EXPECT_EQ(WindowSizes(log), (std::vector<size_t>{3, 3, 3, 3, 1, 3, 3, 3, 3, 1, 3, 3, 3, 3, 1}));
  o = test::RunCommand(Lockstep("diff " + dir.Join("without") + " " + dir.Join("with")));
  EXPECT_EQ(o.code, 0) << "the callback changed the run:\n" << o.out;

  const std::string cmd =
      test::kPython + " " + std::string(LOCKSTEP_SOURCE_DIR) + "/tests/python/hf_trainer.py --output_dir {output_dir}";
  for (const char* masking : {"", " --masking"}) {
    o = test::RunCommand(Lockstep("verify-resume --quiet --json --kill-random 1 --cmd '" + cmd + masking +
                                  "' --resume-arg '--resume_from_checkpoint {checkpoint}' --output_dir " +
                                  dir.Join(*masking ? "verify-masking" : "verify")));
    ASSERT_NE(o.code, 2) << o.out;
    const json report = json::parse(o.out);
    for (const auto& v : report["variants"]) EXPECT_EQ(v["compared_by"], "step log") << v.dump();
    std::printf("HF Trainer resume%s: %s\n", masking, report.dump(2).c_str());
    // What transformers 5.17 does (the pinned version; docs/verify-resume.md, "What Lockstep finds"): the plain
    // mid-epoch resume is exact; with a collator drawing from torch's generator the first
    // resumed step begins from another generator state (transformers #39215). The weights at
    // the end confirm each verdict.
    const json& sigterm = report["variants"][0];
    ASSERT_EQ(sigterm["counted"], true) << sigterm.dump();
    const std::string root = dir.Join(*masking ? "verify-masking" : "verify");
    const auto weights =
        test::RunCommand(Lockstep("diff --json " + root + "/reference/checkpoint-15/model.safetensors " + root +
                                  "/sigterm/checkpoint-15/model.safetensors"));
    if (*masking) {
      const std::string from = sigterm["resumed_from"].get<std::string>();  // .../checkpoint-N
      EXPECT_EQ(sigterm["first_divergence"]["step"], std::stoll(from.substr(from.rfind('-') + 1)) + 1)
          << sigterm.dump();
      EXPECT_EQ(sigterm["first_divergence"]["cause"], "rng") << sigterm.dump();
      EXPECT_EQ(weights.code, 1) << weights.out;
    } else {
      EXPECT_EQ(sigterm["bit_exact"], true) << sigterm.dump();
      EXPECT_EQ(weights.code, 0) << weights.out;
    }
  }
}

}  // namespace
}  // namespace lockstep
