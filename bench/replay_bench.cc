// `lockstep replay` against training: steps replayed per second over training steps per
// second, for the same steps of the same run, interleaved in each iteration.
//   BM_TrainVsReplay  each iteration trains the default mlp run (384 steps, a checkpoint
//                     at 192) in a fresh directory, then replays steps 193..384 from
//                     checkpoint-192 against its log. Training's rate comes from the log's
//                     wall_time over those steps, replay's from its first step begun to
//                     its last step checked; both exclude start-up. Replay also reads the
//                     log, restores logged states and judges each record.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "bench/bench_main.h"
#include "formats/file_util.h"
#include "formats/step_log.h"
#include "replay/step_replay.h"
#include "replay/step_replay_check.h"
#include "trainer/trainer.h"

namespace lockstep {
namespace {

constexpr int64_t kSteps = 384, kFrom = 192;

void BM_TrainVsReplay(benchmark::State& state) {
  char tmpl[] = "/tmp/lockstep-replay-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  bench::ScratchDirs().push_back(dir);
  double train_s = 0, replay_s = 0;
  int64_t round = 0;
  for (auto _ : state) {
    TrainingArgs a;
    a.output_dir = dir + "/run" + std::to_string(round++);
    a.max_steps = kSteps;
    a.save_steps = kFrom;
    a.eval_samples = 0;
    a.num_threads = 1;
    TrainOptions o;
    o.show_progress = false;
    TrainResult r;
    Status st = RunTraining(a, o, &r);
    StepLogContents log;
    if (st.ok()) st = ReadStepLog(a.output_dir + "/" + kStepLogFile, &log);
    std::unique_ptr<ReplayJudge> judge;
    if (st.ok()) st = ReplayJudge::Open(a.output_dir, kFrom, kSteps - kFrom, Tolerance(), &judge);
    ReplayRunInfo info;
    if (st.ok()) {
      ReplayRequest q;
      q.run_dir = a.output_dir;
      q.checkpoint = a.output_dir + "/checkpoint-" + std::to_string(kFrom);
      q.steps = kSteps - kFrom;
      q.step_begin = [&](int64_t s, StepRecord* logged) { return judge->Begin(s, logged); };
      q.step_end = [&](const StepRecord& rec, bool* stop) { return judge->End(rec, stop); };
      st = ReplayRunSteps(q, &info);
    }
    if (!st.ok() || !judge->report().passed()) {
      state.SkipWithError(st.ok() ? "replay did not match the log" : st.ToString().c_str());
      break;
    }
    // wall_time at the end of step kFrom to the end of the last step: the same steps replayed.
    train_s += log.records[kSteps - 1].wall_time.value_or(0) - log.records[kFrom - 1].wall_time.value_or(0);
    replay_s += judge->report().replay_seconds;
    RemoveTree(a.output_dir);
  }
  const double steps = static_cast<double>((kSteps - kFrom) * state.iterations());
  state.counters["train_steps_per_s"] = steps / train_s;
  state.counters["replay_steps_per_s"] = steps / replay_s;
  state.counters["replay_over_train"] = train_s / replay_s;
}

BENCHMARK(BM_TrainVsReplay)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::bench::RunBenchmarks(argc, argv); }
