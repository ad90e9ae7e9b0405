// What `lockstep report` costs on long runs: two runs of 10,000 and of 1,000,000 steps that
// part two thirds of the way through, read, compared and drawn (RenderRunsReport), with the
// page's size as a counter (the target: under 1 MB at 10,000 steps; thinning keeps it near
// constant). The runs are synthetic step logs (bench/synthetic_run.h), each record shaped
// like the trainer's (sample ids, sampler position, generator digest), written once.
//
//   build/bench/report_bench [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "bench/bench_main.h"
#include "bench/synthetic_run.h"
#include "diff/run_divergence.h"
#include "diff/run_side.h"
#include "formats/file_util.h"
#include "formats/step_log.h"
#include "inspect/step_log_view.h"
#include "report/report.h"

namespace lockstep {
namespace {

// Two runs of `steps` steps, the second with a different loss at 2/3 of the way; made once.
std::string RunsOf(int64_t steps) {
  const std::string dir = "/tmp/lockstep_report_bench_" + std::to_string(steps);
  static std::map<int64_t, bool> made;
  if (made[steps]) return dir;
  RemoveTree(dir);
  bench::ScratchDirs().push_back(dir);
  SyntheticRun run;
  run.steps = steps;
  run.dataset_size = 8000;
  if (!WriteSyntheticRun(dir + "/a", run).ok()) return "";
  const int64_t part = steps * 2 / 3;
  run.loss = [part](int64_t s) { return s == part ? 9.0f : SyntheticLoss(s); };
  if (!WriteSyntheticRun(dir + "/b", run).ok()) return "";
  made[steps] = true;
  return dir;
}

void BM_Report(benchmark::State& state) {
  const std::string dir = RunsOf(state.range(0));
  if (dir.empty()) return state.SkipWithError("could not write the runs");
  size_t bytes = 0;
  for (auto _ : state) {
    std::string html;
    RunsReportSummary summary;
    const Status st = RenderRunsReport({dir + "/a", dir + "/b"}, RunsReportOptions(), &html, &summary);
    if (!st.ok()) return state.SkipWithError(st.ToString().c_str());
    bytes = html.size();
  }
  state.counters["page_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Report)->Arg(10000)->Arg(1000000)->Unit(benchmark::kMillisecond)->Iterations(1);

// Of that, reading one run (its whole step log): the part a larger run grows.
void BM_ReadOneRun(benchmark::State& state) {
  const std::string dir = RunsOf(state.range(0));
  if (dir.empty()) return state.SkipWithError("could not write the runs");
  for (auto _ : state) {
    RunSide side;
    if (!LoadRunChecked(dir + "/a", &side).ok()) return state.SkipWithError("read failed");
  }
}
BENCHMARK(BM_ReadOneRun)->Arg(10000)->Arg(1000000)->Unit(benchmark::kMillisecond)->Iterations(1);

// The step log's readers on their own, as `lockstep inspect steps.jsonl.zst` and `lockstep
// diff a b` run them: every record read, then summarised or compared step by step.
void BM_InspectStepLog(benchmark::State& state) {
  const std::string dir = RunsOf(state.range(0));
  if (dir.empty()) return state.SkipWithError("could not write the runs");
  for (auto _ : state) {
    nlohmann::json report;
    if (!ViewStepLog(dir + "/a/" + kStepLogFile, StepLogViewOptions(), &report).ok()) {
      return state.SkipWithError("inspect failed");
    }
  }
}
BENCHMARK(BM_InspectStepLog)->Arg(1000000)->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_DiffRuns(benchmark::State& state) {
  const std::string dir = RunsOf(state.range(0));
  if (dir.empty()) return state.SkipWithError("could not write the runs");
  for (auto _ : state) {
    RunDiff diff;
    if (!DiffRuns(dir + "/a", dir + "/b", Tolerance(), &diff).ok()) return state.SkipWithError("diff failed");
  }
}
BENCHMARK(BM_DiffRuns)->Arg(1000000)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::bench::RunBenchmarks(argc, argv); }
