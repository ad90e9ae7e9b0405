// Resume latency at an early and a late position in one long epoch.
//
// Lockstep restores the data position in O(1): the sampler's generator state at the epoch
// start plus a cursor, and the step log is cut at the frame the checkpoint names. So
// resuming at update 4,998 of a 5,000-update epoch must cost what resuming at update 2
// costs. BM_Resume measures, with manual timing, from the call to the end of the first
// resumed step: settings, data, model, checksummed checkpoint validation, every restore,
// the log cut, one step. BM_SkipBatches is the contrast: the HF-style resume that fetches
// and discards every skipped batch (skip_first_batches), which grows with the position.
//
//   build/bench/resume_latency_bench [--benchmark_format=json]
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "bench/bench_main.h"
#include "formats/file_util.h"
#include "trainer/datasets.h"
#include "trainer/sampler.h"
#include "trainer/trainer.h"

namespace lockstep {
namespace {

constexpr int64_t kUpdatesPerEpoch = 5000;
constexpr int64_t kEarly = 2;
constexpr int64_t kLate = kUpdatesPerEpoch - 2;

// One epoch of 5,000 updates: 40,000 samples in batches of 8.
TrainingArgs LongEpochArgs(const std::string& output_dir) {
  TrainingArgs a;
  a.output_dir = output_dir;
  a.model = "mlp";
  a.train_samples = 8 * kUpdatesPerEpoch;
  a.eval_samples = 0;
  a.num_train_epochs = 1;
  a.hidden_size = 16;
  a.save_steps = 1e9;  // only the stops below save
  return a;
}

struct Fixture {
  std::string root;
  std::string run_dir(int64_t step) const { return root + "/stopped-at-" + std::to_string(step); }
};

const Fixture& GetFixture() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    char tmpl[] = "/tmp/lockstep-resume-bench-XXXXXX";
    fx->root = ::mkdtemp(tmpl);
    bench::ScratchDirs().push_back(fx->root);
    for (int64_t step : {kEarly, kLate}) {
      TrainOptions o;
      o.show_progress = false;
      o.stop_after_step = step;
      TrainResult r;
      const Status st = RunTraining(LongEpochArgs(fx->run_dir(step)), o, &r);
      if (!st.ok()) {
        std::fprintf(stderr, "resume_latency_bench: setup failed: %s\n", st.ToString().c_str());
        std::exit(2);
      }
    }
    return fx;
  }();
  return *f;
}

void BM_Resume(benchmark::State& state) {
  const int64_t step = state.range(0);
  const std::string dir = GetFixture().run_dir(step);
  for (auto _ : state) {
    TrainOptions o;
    o.show_progress = false;
    o.resume_from = dir + "/checkpoint-" + std::to_string(step);
    o.stop_after_step = step + 1;
    const auto start = std::chrono::steady_clock::now();
    double to_first_step = 0;
    o.hooks.on_event = [&](const char* event, int64_t s) {
      if (s == step + 1 && std::string(event) == "step") {
        to_first_step = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    };
    TrainResult r;
    const Status st = RunTraining(LongEpochArgs(dir), o, &r);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
    state.SetIterationTime(to_first_step);
  }
  state.counters["position"] = static_cast<double>(step);
}
BENCHMARK(BM_Resume)->Arg(kEarly)->Arg(kLate)->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2.0);

// What a resume costs when it replays the data pipeline up to the position, as HF's
// skip_first_batches does: every skipped batch's ids are drawn and its samples gathered.
void BM_SkipBatches(benchmark::State& state) {
  const int64_t updates = state.range(0);
  const TrainingArgs args = LongEpochArgs("");
  const DatasetPair data = MakeDatasets(args);
  EpochSampler sampler(data.train.size(), args.seed);
  for (auto _ : state) {
    sampler.BeginEpoch(0);
    for (int64_t u = 0; u < updates; ++u) {
      torch::Tensor ids = sampler.Ids(u * 8, 8);
      benchmark::DoNotOptimize(data.train.inputs.index_select(0, ids));
    }
  }
  state.counters["position"] = static_cast<double>(updates);
}
BENCHMARK(BM_SkipBatches)->Arg(kEarly)->Arg(kLate)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::bench::RunBenchmarks(argc, argv); }
