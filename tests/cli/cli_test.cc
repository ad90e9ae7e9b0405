// The lockstep binary as a user runs it: exit codes, messages, --help, --json.
#include <algorithm>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace lockstep {
namespace {

using Output = test::CommandOutput;

Output Capture(const std::string& command) { return test::RunCommand(command); }

Output Lockstep(const std::string& args) { return Capture(std::string(LOCKSTEP_BIN) + " " + args); }

const char* kTiny = "--train_samples 20 --eval_samples 8 --num_train_epochs 1 --quiet";

}  // namespace

TEST(Cli, HelpListsHfFlags) {
  Output o = Lockstep("train --help");
  EXPECT_EQ(o.code, 0);
  for (const char* flag : {"--per_device_train_batch_size", "--lr_scheduler_kwargs", "--save_total_limit",
                           "--load_best_model_at_end", "--config", "--json"}) {
    EXPECT_NE(o.out.find(flag), std::string::npos) << flag;
  }
}

// `lockstep` itself must not load LibTorch (inspect starts fast and runs anywhere); the
// training commands reach the helper beside it and keep their exit codes.
TEST(CliBinaries, LockstepLinksNoLibTorchAndItsHelperDoes) {
  const std::string helper = std::string(LOCKSTEP_BIN) + "-train";
  const Output front = Capture("ldd " + std::string(LOCKSTEP_BIN));
  const Output back = Capture("ldd " + helper);
  ASSERT_EQ(front.code, 0) << front.out;
  ASSERT_EQ(back.code, 0) << back.out;
  EXPECT_EQ(front.out.find("libtorch"), std::string::npos) << front.out;
  EXPECT_EQ(front.out.find("libc10"), std::string::npos) << front.out;
  EXPECT_NE(back.out.find("libc10"), std::string::npos) << back.out;  // the check can see it
}

TEST(CliBinaries, TopLevelHelpListsEverySubcommand) {
  Output o = Lockstep("--help");
  EXPECT_EQ(o.code, 0);
  for (const char* sub : {"bench", "diff", "inspect", "replay", "train", "verify-resume"})
    EXPECT_NE(o.out.find(sub), std::string::npos) << sub;
  o = Lockstep("verify-resume --help");  // answered by the helper, under the tool's name
  EXPECT_EQ(o.code, 0);
  EXPECT_NE(o.out.find("Usage: lockstep verify-resume"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("--kill-random"), std::string::npos) << o.out;
  o = Lockstep("--help train");  // the flags are the helper's: it answers this too
  EXPECT_EQ(o.code, 0);
  EXPECT_NE(o.out.find("--per_device_train_batch_size"), std::string::npos) << o.out;
}

TEST(CliBinaries, MissingHelperIsNamedAndExitsTwo) {
  test::ScratchDir dir;
  const std::string alone = dir.Join("lockstep");  // a copy: /proc/self/exe must point here
  test::WriteAll(alone, test::ReadAll(LOCKSTEP_BIN));
  ASSERT_EQ(Capture("chmod +x " + alone).code, 0);
  Output o = Capture(alone + " train --max_steps 1 --output_dir " + dir.Join("run"));
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("cannot run " + dir.Join("lockstep-train")), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("No such file"), std::string::npos) << o.out;
  EXPECT_EQ(Capture(alone + " --version").code, 0);  // the torch-free commands still work
  // Help for the training commands is answered without the helper (and without LibTorch),
  // from the same definitions the helper parses with.
  for (const char* cmd : {"train", "verify-resume", "replay"}) {
    const Output front = Capture(alone + " " + cmd + " --help");
    EXPECT_EQ(front.code, 0) << cmd << ": " << front.out;
    EXPECT_EQ(front.out, Capture(std::string(LOCKSTEP_BIN) + "-train " + cmd + " --help").out) << cmd;
  }
}

TEST(Cli, BadBatchSizeExitsTwoWithMessage) {
  test::ScratchDir dir;
  Output o = Lockstep("train --output_dir " + dir.path() + " --per_device_train_batch_size 0");
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.out.find("per_device_train_batch_size must be >= 1, got 0"), std::string::npos) << o.out;
}

TEST(Cli, MalformedValuesAndUnknownFlagsExitTwo) {
  EXPECT_EQ(Lockstep("train --learning_rate fast").code, 2);
  EXPECT_EQ(Lockstep("train --no_such_flag 3").code, 2);
  Output o = Lockstep("train --lr_scheduler_kwargs '{\"num_cycles\": 2' --quiet");
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.out.find("--lr_scheduler_kwargs expects JSON"), std::string::npos) << o.out;
  EXPECT_EQ(Lockstep("").code, 2);  // a subcommand is required
}

// Issue 10: no raw CLI11 text reaches the user. Every usage error starts with the
// subcommand, names the flag, says what is allowed, and suggests the flag a typo meant.
TEST(Cli, EveryUsageErrorIsToldInLockstepsWords) {
  const std::pair<std::string, std::string> cases[] = {
      {"train --save_step 5", "lockstep train: unknown flag --save_step; did you mean --save_steps?"},
      {"train --per-device-train-batch-size 4", "did you mean --per_device_train_batch_size?"},
      {"train --output_dir", "lockstep train: --output_dir needs a value"},
      {"train --stop-after-step 0", "lockstep train: --stop-after-step expects a whole number of at least 1, got '0'"},
      {"train --max_steps 1.5", "lockstep train: --max_steps expects an integer, got '1.5'"},
      {"train --eval_steps soon", "lockstep train: --eval_steps expects a number or none, got 'soon'"},
      {"train stray", "lockstep train: unexpected argument 'stray'"},
      {"verify-resume --kill-random two", "lockstep verify-resume: --kill-random expects a whole number"},
      {"verify-resume --kil-random 3", "did you mean --kill-random?"},
      {"inspect", "lockstep inspect: missing path"},
      {"inspect . --head -1", "lockstep inspect: --head expects a whole number of at least 0, got '-1'"},
      {"trian", "lockstep: unknown subcommand 'trian'; did you mean 'train'?"},
      {"", "lockstep: name a subcommand: bench, diff, inspect, report, replay, train, verify-resume"},
      {"bench compar a b", "lockstep bench: unknown action 'compar'"},
      {"diff a", "lockstep diff: missing b"},
      {"diff a b --tolerance 3", "lockstep diff: unknown flag --tolerance"},
      {"replay run", "lockstep replay: missing --from"},
      {"replay run --from c --step 3", "did you mean --steps?"},
  };
  for (const auto& [args, expected] : cases) {
    const Output o = Lockstep(args);
    EXPECT_EQ(o.code, 2) << args << ": " << o.out;
    EXPECT_NE(o.out.find(expected), std::string::npos) << args << ": " << o.out;
    for (const char* raw : {"Run with --help", "not expected", "required", "Could not convert", "not in range"}) {
      EXPECT_EQ(o.out.find(raw), std::string::npos) << args << ": CLI11's words leaked: " << o.out;
    }
  }
}

// The new-user trial: two step logs given to diff are pointed at the runs holding them.
TEST(Cli, DiffOfAStepLogNamesTheRunToCompare) {
  test::ScratchDir dir;
  const std::string log = dir.Join("steps.jsonl.zst");
  test::WriteAll(log, "x");
  const Output o = Lockstep("diff " + log + " " + log);
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find(log + ": a step log: diff compares the runs that hold them (lockstep diff " + dir.path()),
            std::string::npos)
      << o.out;
}

TEST(Cli, WithJsonAnErrorIsAJsonObjectOnStdout) {
  const Output o = Capture("{ " + std::string(LOCKSTEP_BIN) + " train --seed x --json 2>/dev/null; }");
  EXPECT_EQ(o.code, 2);
  const auto error = nlohmann::json::parse(o.out);
  EXPECT_EQ(error["exit_code"], 2);
  EXPECT_EQ(error["error"]["command"], "train");
  EXPECT_EQ(error["error"]["code"], "invalid_argument");
  EXPECT_EQ(error["error"]["message"], "--seed expects an integer, got 'x'");
}

TEST(Cli, HelpShowsEveryDefault) {
  const Output o = Lockstep("train --help");
  for (const char* shown : {"--save_steps FLOAT=500.0", "--lr_scheduler_type TEXT=linear",
                            "--eval_steps FLOAT|none=none", "--num_threads INT|none=none"}) {
    EXPECT_NE(o.out.find(shown), std::string::npos) << shown << "\n" << o.out;
  }
}

TEST(Cli, ConfigTyposGetTheClosestSetting) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("cfg.json"), "{\"learning_rat\": 0.1}");
  const Output o = Lockstep("train --config " + dir.Join("cfg.json"));
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.out.find("unknown setting 'learning_rat'; did you mean 'learning_rate'?"), std::string::npos) << o.out;
}

// Issue 10, finding 9: the README reads the step log with zstdcat and jq, which the
// install script provides; the command as the README writes it.
TEST(Cli, TheStepLogReadsWithTheReadmesZstdcatAndJq) {
  test::ScratchDir dir;
  ASSERT_EQ(Lockstep("train --output_dir " + dir.Join("run") + " " + kTiny).code, 0);
  const Output o = Capture("zstdcat " + dir.Join("run/steps.jsonl.zst") +
                           " | jq -c 'select(.kind==\"step\") | {step, epoch, loss, lr}' | tail -1");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("{\"step\":3,\"epoch\":1"), std::string::npos) << o.out;
}

TEST(Cli, ConfigErrorsNameTheFile) {
  test::ScratchDir dir;
  Output o = Lockstep("train --config " + dir.Join("missing.json"));
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.out.find("missing.json"), std::string::npos) << o.out;
  test::WriteAll(dir.Join("bad.json"), "{\"seed\": 1, \"fp16\": true}");
  o = Lockstep("train --config " + dir.Join("bad.json"));
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.out.find("unknown setting 'fp16'"), std::string::npos) << o.out;
}

TEST(Cli, ConfigThenFlagsAndJsonOutput) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("cfg.json"), "{\"per_device_train_batch_size\": 4, \"seed\": 3, \"max_steps\": 3}");
  Output o = Lockstep("train --config " + dir.Join("cfg.json") + " --max_steps 2 --json --output_dir " +
                      dir.Join("run") + " " + kTiny);
  ASSERT_EQ(o.code, 0) << o.out;
  const nlohmann::json j = nlohmann::json::parse(o.out.substr(o.out.find('{')));
  EXPECT_EQ(j["global_step"], 2);  // the flag overrode the config
  EXPECT_EQ(j["train_metrics"]["epoch"].get<double>(), 2.0 * 4 / 20);
}

TEST(Cli, PlainProgressLinesAndSummaryWhenNotATerminal) {
  test::ScratchDir dir;
  Output o = Lockstep("train --output_dir " + dir.path() +
                      " --train_samples 40 --eval_samples 8 "
                      "--per_device_train_batch_size 4 --num_train_epochs 1 --logging_steps 5");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("step 5/10 | epoch 0.50 | loss"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("steps/s | ETA"), std::string::npos);
  EXPECT_NE(o.out.find("Training finished: 10 steps"), std::string::npos);
  EXPECT_EQ(o.out.find('\r'), std::string::npos);                     // no in-place redraws in a pipe
  EXPECT_EQ(o.out.find("trained here"), std::string::npos) << o.out;  // a fresh run trained every step
}

// A resume's summary counts the steps it trained, and its speed is theirs: it used to divide
// every step of the run by the resume's own seconds.
TEST(Cli, AResumesSummaryCountsTheStepsItTrained) {
  test::ScratchDir dir;
  const std::string flags = " --output_dir " + dir.path() + " --max_steps 20 --save_steps 5 --train_samples 64";
  Output o = Lockstep("train" + flags + " --stop-after-step 15");
  ASSERT_EQ(o.code, 0) << o.out;
  o = Lockstep("train" + flags + " --resume --json");
  ASSERT_EQ(o.code, 0) << o.out;
  const nlohmann::json j = nlohmann::json::parse(o.out.substr(o.out.find('{')));
  EXPECT_EQ(j["global_step"], 20);
  EXPECT_EQ(j["trained_steps"], 5);
  o = Lockstep("train" + flags + " --overwrite_output_dir true --stop-after-step 15");
  ASSERT_EQ(o.code, 0) << o.out;
  o = Lockstep("train" + flags + " --resume");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("Training finished: 20 steps"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("trained here"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("5 (after step 15)"), std::string::npos) << o.out;
}

}  // namespace lockstep

namespace lockstep {

// Issue 10, finding 10: the note names the metric that made the new best.
TEST(Cli, EvalNoteNamesTheBestMetric) {
  test::ScratchDir dir;
  const Output o = Lockstep("train --output_dir " + dir.Join("run") +
                            " --train_samples 40 --eval_samples 16 --num_train_epochs 2 --eval_strategy epoch "
                            "--metric_for_best_model accuracy");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("eval_accuracy"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("(best eval_accuracy so far)"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("(best so far)"), std::string::npos) << o.out;
}

TEST(CliVerifyResume, BitExactExitsZeroWithAVerdictTable) {
  test::ScratchDir dir;
  Output o = Lockstep("verify-resume --output_dir " + dir.Join("v") + " " + kTiny + " --interrupt-at 2");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("interrupt-2"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("BIT-EXACT"), std::string::npos) << o.out;
}

TEST(CliVerifyResume, InjectedFaultExitsOneNamingStepAndField) {
  test::ScratchDir dir;
  Output o = Lockstep("verify-resume --output_dir " + dir.Join("v") + " " + kTiny +
                      " --interrupt-at 2 --fault-inject scheduler --json");
  EXPECT_EQ(o.code, 1) << o.out;
  const auto start = o.out.find('{');
  ASSERT_NE(start, std::string::npos) << o.out;
  const auto report = nlohmann::json::parse(o.out.substr(start));
  EXPECT_EQ(report["verdict"], "diverged");
  EXPECT_EQ(report["fault_injected"], "scheduler");
  const auto& first = report["variants"][0]["comparison"]["first_divergence"];
  EXPECT_EQ(first["step"], 3);
  EXPECT_EQ(first["field"], "lr");
  EXPECT_EQ(first["cause"], "lr");  // the divergence vocabulary `lockstep diff` uses
}

// Issue 10, finding 10: a plan that makes no sense is refused before the reference runs.
TEST(CliVerifyResume, ZeroKillsOrCrashesAndRepeatedStepsAreRefusedBeforeAnyRun) {
  test::ScratchDir dir;
  for (const std::string& flags : {"--kill-random 0", "--crash-points 0", "--interrupt-at 3,3"}) {
    Output o = Lockstep("verify-resume --output_dir " + dir.Join("v") + " " + kTiny + " " + flags);
    EXPECT_EQ(o.code, 2) << flags << ": " << o.out;
    EXPECT_NE(o.out.find(flags.substr(0, flags.find(' '))), std::string::npos) << o.out;
    EXPECT_FALSE(test::FileExists(dir.Join("v/reference"))) << flags;
  }
}

// Issue 21, finding 11: with --max_steps 20 no default interruption fits; it used to print an
// empty table, "verdict: BIT-EXACT" and exit 0. And it wrote reference/ into an existing run.
TEST(CliVerifyResume, NoVerdictOverZeroVariantsAndNeverIntoAnotherRun) {
  test::ScratchDir dir;
  Output o = Lockstep("verify-resume --output_dir " + dir.Join("v") + " --max_steps 20");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("no interruption fits in the run's 20 steps"), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("BIT-EXACT"), std::string::npos) << o.out;
  EXPECT_FALSE(test::FileExists(dir.Join("v/reference")));
  ASSERT_EQ(Lockstep("train --output_dir " + dir.Join("run") + " " + kTiny).code, 0);
  for (const char* overwrite : {"", " --overwrite_output_dir"}) {
    o = Lockstep("verify-resume --output_dir " + dir.Join("run") + " " + kTiny + overwrite);
    EXPECT_EQ(o.code, 2) << o.out;
    EXPECT_NE(o.out.find("which verify-resume did not write"), std::string::npos) << o.out;
    EXPECT_FALSE(test::FileExists(dir.Join("run/reference")));
    EXPECT_TRUE(test::FileExists(dir.Join("run/steps.jsonl.zst")));
  }
}

TEST(CliVerifyResume, BadUsageExitsTwo) {
  test::ScratchDir dir;
  Output o = Lockstep("verify-resume --output_dir " + dir.Join("v") + " " + kTiny + " --interrupt-at 99");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--interrupt-at 99: must be between 1 and"), std::string::npos) << o.out;
  o = Lockstep("verify-resume --output_dir " + dir.Join("v") + " --fault-inject everything");
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_NE(o.out.find("--fault-inject everything"), std::string::npos) << o.out;
  o = Lockstep("verify-resume --interrupt-at two");
  EXPECT_EQ(o.code, 2) << o.out;
}

}  // namespace lockstep

namespace lockstep {

// Issue 21, finding 2: HF's argument parser reads a bare boolean flag as true. CLI11 handed a
// bare option its default text ("false"), so `--load_best_model_at_end` (the README's own
// example) trained without a best model. Every boolean setting, given bare, is true.
TEST(Cli, ABareBooleanFlagIsTrue) {
  test::ScratchDir dir;
  const Output help = Lockstep("train --help");
  std::vector<std::string> bools;
  for (size_t at = help.out.find("BOOL=false (bare: true)"); at != std::string::npos;
       at = help.out.find("BOOL=false (bare: true)", at + 1)) {
    const size_t start = help.out.rfind("--", at);
    bools.push_back(help.out.substr(start + 2, help.out.find(' ', start) - start - 2));
  }
  for (const char* b : {"overwrite_output_dir", "load_best_model_at_end", "save_async", "world_invariant"}) {
    ASSERT_NE(std::find(bools.begin(), bools.end(), b), bools.end()) << b << "\n" << help.out;
  }
  std::string bare;
  for (const auto& b : bools) bare += " --" + b;
  const Output o = Lockstep("train --output_dir " + dir.Join("run") + " " + kTiny + bare +
                            " --max_steps 4 --save_steps 2 --eval_strategy steps --eval_steps 2 --json");
  ASSERT_EQ(o.code, 0) << o.out;
  EXPECT_NE(nlohmann::json::parse(o.out.substr(o.out.find('{')))["best_model_checkpoint"], nullptr) << o.out;
  nlohmann::json saved;
  ASSERT_NO_THROW(saved = nlohmann::json::parse(test::ReadAll(dir.Join("run/checkpoint-4/training_args.json"))));
  for (const auto& b : bools) EXPECT_EQ(saved[b], true) << b << " " << saved.dump();
  // An explicit value still wins.
  const Output off =
      Lockstep("train --output_dir " + dir.Join("off") + " " + kTiny + " --max_steps 2 --save_async false --json");
  ASSERT_EQ(off.code, 0) << off.out;
  ASSERT_NO_THROW(saved = nlohmann::json::parse(test::ReadAll(dir.Join("off/checkpoint-2/training_args.json"))));
  EXPECT_EQ(saved["save_async"], false);
}

}  // namespace lockstep
