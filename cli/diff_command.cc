#include "cli/diff_command.h"

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/arg_check.h"
#include "cli/exit_codes.h"
#include "cli/tolerance_flags.h"
#include "diff/module_trace.h"
#include "diff/run_divergence.h"
#include "diff/tensor_diff.h"
#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/run_layout.h"
#include "formats/step_log.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

struct DiffFlags {
  std::string a, b;
  std::string atol, rtol, ulp;
  bool json = false;
};

enum class InputKind { kRun, kCheckpoint, kTrace };

// A run directory holds a step log or checkpoint-N directories (or, from HF, only a
// trainer_state.json); a checkpoint directory holds model and state files; a trace is the
// JSON `lockstep replay --trace-modules` writes. Anything else is unreadable input.
Status Classify(const std::string& path, InputKind* kind) {
  std::error_code ec;
  LOCKSTEP_RETURN_IF_ERROR(CheckInputPath(path));
  if (fs::is_directory(path, ec)) {
    std::vector<CheckpointDir> dirs;
    LOCKSTEP_RETURN_IF_ERROR(ListCheckpointDirs(path, &dirs));  // names an unreadable directory
    if (IsRunDirectory(path)) return *kind = InputKind::kRun, Status::Ok();
    if (!CheckpointLayout(path).empty()) return *kind = InputKind::kCheckpoint, Status::Ok();
    return Status::InvalidArgument(path + ": neither a run directory nor a checkpoint");
  }
  if (HasSuffix(path, ".json") && !HasSuffix(path, ".safetensors.index.json")) {
    return *kind = InputKind::kTrace, Status::Ok();
  }
  if (fs::path(path).filename() == kStepLogFile) {
    return Status::InvalidArgument(path + ": a step log: diff compares the runs that hold them (lockstep diff " +
                                   fs::path(path).parent_path().string() + " OTHER_RUN_DIR)");
  }
  return *kind = InputKind::kCheckpoint, Status::Ok();
}

const char* KindName(InputKind k) {
  return k == InputKind::kRun     ? "a run directory"
         : k == InputKind::kTrace ? "a module trace"
                                  : "a checkpoint or tensor file";
}

int Finish(bool json, const nlohmann::json& report, const std::string& text, bool pass) {
  if (json)
    std::printf("%s\n", DumpJson(report, 2).c_str());
  else
    std::fputs(text.c_str(), stdout);
  return pass ? kExitOk : kExitFailed;
}

}  // namespace

std::function<int()> AddDiffCommand(CLI::App* app) {
  auto flags = std::make_shared<DiffFlags>();
  CLI::App* cmd = app->add_subcommand(
      "diff",
      "Compare A (the reference) with B (the candidate). Two run directories (Lockstep or Hugging Face, in\n"
      "any mix): the settings that differ, the first step where the runs part and its cause (data, rng,\n"
      "lr, numerics, length, weights, state, settings), the aftermath and the `lockstep replay` command\n"
      "that checks it. Two checkpoints or tensor files (.h5, .safetensors, an index): tensor by tensor in\n"
      "each dtype. Two module traces (replay --trace-modules): the first module whose output differs.\n"
      "Exit 0 identical or within tolerance, 1 different, 2 bad usage or unreadable input.");
  cmd->add_option("a", flags->a, "Reference: run directory, checkpoint, tensor file or trace")->required();
  cmd->add_option("b", flags->b, "Candidate, of the same kind")->required();
  AddToleranceFlags(cmd, &flags->atol, &flags->rtol, &flags->ulp,
                    "Accept values at most N units in the last place apart, in their own dtype");
  cmd->add_flag("--json", flags->json, "Print the report as JSON on stdout");
  return [flags]() {
    const auto fail = [&](const Status& st) { return ReportFailure("diff", st, flags->json, IoRole::kInput); };
    Tolerance tol;
    Status st = ParseToleranceFlags(flags->atol, flags->rtol, flags->ulp, &tol);
    if (!st.ok()) return fail(st);
    InputKind ka, kb;
    if (!(st = Classify(flags->a, &ka)).ok() || !(st = Classify(flags->b, &kb)).ok()) return fail(st);
    if (ka != kb) {
      return fail(Status::InvalidArgument(flags->a + " is " + KindName(ka) + " but " + flags->b + " is " +
                                          KindName(kb) + ": compare like with like"));
    }
    if (ka == InputKind::kRun) {
      RunDiff d;
      if (!(st = DiffRuns(flags->a, flags->b, tol, &d)).ok()) return fail(st);
      return Finish(flags->json, RunDiffJson(d), RunDiffText(d, flags->a, flags->b),
                    d.compared_anything() && d.within_tolerance());
    }
    if (ka == InputKind::kTrace) {
      TraceDiff d;
      if (!(st = DiffTraceFiles(flags->a, flags->b, tol, &d)).ok()) return fail(st);
      return Finish(flags->json, TraceDiffJson(d), TraceDiffText(d), d.within_tolerance());
    }
    CheckpointDiff d;
    if (!(st = DiffCheckpoints(flags->a, flags->b, tol, &d)).ok()) return fail(st);
    return Finish(flags->json, CheckpointDiffJson(d, tol), CheckpointDiffText(d, tol),
                  d.compared_anything() && d.within_tolerance());
  };
}

}  // namespace lockstep
