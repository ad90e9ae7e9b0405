#include "cli/replay_command.h"

#include "cli/training_commands.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cli/arg_check.h"
#include "cli/exit_codes.h"
#include "cli/launcher.h"
#include "cli/tolerance_flags.h"
#include "cli/train_main.h"
#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/module_trace.h"
#include "formats/step_log.h"
#include "process/job_env.h"
#include "replay/step_replay.h"
#include "replay/step_replay_check.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

Status ParseFlags(const ReplayFlags& f, int64_t* steps, int64_t* threads, Tolerance* tol) {
  if (!f.num_threads.empty()) LOCKSTEP_RETURN_IF_ERROR(ParseWholeNumber("--num_threads", f.num_threads, 1, threads));
  if (f.from.empty()) return Status::InvalidArgument("missing --from CHECKPOINT (the checkpoint to replay from)");
  // No --steps: every logged step after the checkpoint (0), or the one --trace-modules records.
  *steps = f.trace.empty() ? 0 : 1;
  if (!f.steps.empty()) LOCKSTEP_RETURN_IF_ERROR(ParseWholeNumber("--steps", f.steps, 1, steps));
  if (!f.device.empty() && f.device != "cpu" && f.device != "cuda") {
    return Status::InvalidArgument("--device " + f.device + ": expected cpu or cuda");
  }
  if (!f.trace.empty() && *steps != 1) {
    return Status::InvalidArgument("--trace-modules records one step: use it with --steps 1");
  }
  // The trace is written after the replay: a path it cannot be written to is bad usage,
  // found before any step runs.
  std::error_code ec;
  if (!f.trace.empty() && fs::is_directory(f.trace, ec)) {
    return Status::InvalidArgument("--trace-modules " + f.trace + ": is a directory; give the trace file's path (" +
                                   (fs::path(f.trace) / "trace.json").string() + ")");
  }
  const fs::path trace_dir = fs::path(f.trace).parent_path();
  if (!f.trace.empty() && !trace_dir.empty() && !fs::is_directory(trace_dir, ec)) {
    return Status::NotFound("--trace-modules " + f.trace + ": no directory " + trace_dir.string());
  }
  return ParseToleranceFlags(f.atol, f.rtol, f.ulp, tol);
}

// --from takes a checkpoint directory, or a name inside RUN ("checkpoint-300").
std::string CheckpointPath(const ReplayFlags& f) {
  if (fs::is_directory(f.from)) return fs::path(f.from).lexically_normal().string();
  return (fs::path(f.run) / f.from).lexically_normal().string();
}

}  // namespace

std::function<int()> AddReplayCommand(CLI::App* app) {
  auto flags = std::make_shared<ReplayFlags>();
  DefineReplayCommand(app, flags.get());
  return [flags]() {
    const auto fail = [&](const Status& st) { return ReportFailure("replay", st, flags->json); };
    int64_t steps = 0, threads = 0;
    Tolerance tol;
    Status st = ParseFlags(*flags, &steps, &threads, &tol);
    if (!st.ok()) return fail(st);
    if (!fs::is_directory(flags->run)) return fail(Status::NotFound(flags->run + ": no such run directory"));
    if (!fs::is_regular_file(fs::path(flags->run) / kStepLogFile)) {
      return fail(Status::NotFound(flags->run + ": no " + kStepLogFile + " (replay needs a Lockstep run)"));
    }
    ReplayRequest request;
    request.run_dir = flags->run;
    request.checkpoint = CheckpointPath(*flags);
    request.device = flags->device;
    request.num_threads = threads;
    int64_t from = 0;
    if (!fs::is_directory(request.checkpoint)) {
      return fail(Status::NotFound(request.checkpoint + ": no such checkpoint directory"));
    }
    if (!ParseCheckpointDirName(fs::path(request.checkpoint).filename().string(), &from)) {
      return fail(Status::InvalidArgument(request.checkpoint + ": not a checkpoint-N directory"));
    }
    // A data-parallel run replays as a job of its world size: this process launches it,
    // or is one of its ranks (RANK set), of which rank 0 judges and reports.
    json saved;
    if (!(st = ReadJsonFile(request.checkpoint + "/" + kTrainingArgsJsonFile, &saved)).ok()) return fail(st);
    const int64_t world =
        saved.value("world_size", json(1)).is_number_integer() ? saved["world_size"].get<int64_t>() : 1;
    int64_t nproc = world;
    if (!flags->nproc_per_node.empty() &&
        !(st = ParseWholeNumber("--nproc_per_node", flags->nproc_per_node, 1, &nproc)).ok()) {
      return fail(st);
    }
    if (nproc != world) {
      return fail(Status::InvalidArgument("--nproc_per_node " + std::to_string(nproc) + ": " + request.checkpoint +
                                          " is from a job of " + std::to_string(world) +
                                          " rank(s); a replay runs as "
                                          "many (each rank trains on the batches it logged)"));
    }
    if (world > 1 && !IsRankOfJob()) return LaunchAsRanks(static_cast<int>(world), TrainingCommandLine());
    const bool speaks = RankOfThisProcess() == 0;
    std::unique_ptr<ReplayJudge> judge;
    if (!(st = ReplayJudge::Open(flags->run, from, steps, tol, &judge)).ok()) return fail(st);
    request.steps = judge->report().steps_requested;
    request.step_begin = [&](int64_t step, StepRecord* logged) { return judge->Begin(step, logged); };
    request.step_end = [&](const StepRecord& record, bool* stop) { return judge->End(record, stop); };
    json trace = {
        {"run", flags->run}, {"checkpoint", request.checkpoint}, {"step", from + 1}, {"entries", json::array()}};
    if (!flags->trace.empty()) {
      request.trace_step = from + 1;
      request.on_trace = [&trace](const json& entry) { trace["entries"].push_back(entry); };
      request.numerics_fault_module = flags->numerics_fault;
    }
    ReplayRunInfo info;
    if (!(st = ReplayRunSteps(request, &info)).ok()) return fail(st);
    if (!speaks) return kExitOk;  // rank 0 reports the job's verdict
    if (!flags->trace.empty()) {
      trace["device"] = info.device;
      trace["num_threads"] = info.num_threads;
      if (!(st = WriteModuleTrace(flags->trace, trace)).ok()) return fail(st);
    }
    const ReplayReport& r = judge->report();
    json report = ReplayReportJson(r);
    report["run"] = flags->run;
    report["checkpoint"] = request.checkpoint;
    report["device"] = info.device;
    report["num_threads"] = info.num_threads;
    report["seconds_total"] = info.seconds;
    if (!flags->trace.empty()) report["trace"] = flags->trace;
    if (flags->json) {
      std::printf("%s\n", DumpJson(report, 2).c_str());
    } else {
      std::fputs(ReplayReportText(r).c_str(), stdout);
      std::printf("  device %s, %lld thread%s%s\n", info.device.c_str(), static_cast<long long>(info.num_threads),
                  info.num_threads == 1 ? "" : "s",
                  flags->trace.empty() ? "" : (", module trace written to " + flags->trace).c_str());
    }
    return r.passed() ? kExitOk : kExitFailed;
  };
}

}  // namespace lockstep
