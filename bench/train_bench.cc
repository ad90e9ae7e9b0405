// Training throughput, side by side with the Python peer and the machine's sgemm peak.
//
//   BM_Train/<size>        `lockstep train` in process: N steps, step log on, no saves;
//                          manual time = the loop (TrainResult::runtime_s)
//   BM_TrainNoLog/<size>   the same with no step records (--no-step-log): the difference
//                          is what recording costs
//   BM_PythonTrain/<size>  bench/python_peer.py: the same model, AdamW with HF's decay
//                          groups, clipping and linear schedule, as an ordinary PyTorch loop
//   BM_TrainSaving/async:0|1  gpt 4 x 256 saving every 2nd step, synchronously and with
//                          --save_async: the loop's stall per save
//   BM_DataParallel/ranks:1|2/invariant_unit:0|1|4  gpt_mid as 1 process and as a 2-rank
//                          job: scaling, and the all-reduce's cost per step; with an
//                          invariant_unit, --world_invariant with units of that many samples
//                          against the ordinary all-reduce (unit 0)
//   BM_PythonTrainCompiled/<size>  the peer's loop with its loss under torch.compile
//                          (inductor, CPU), timed after one uncounted warm-up step that
//                          compiles it: a second yardstick (torch 2.x only)
//   BM_PythonTrainRecorded/<size>  the peer's loop recorded with lockstep.Recorder
//                          (python/lockstep): what recording costs a Python user
//   BM_PythonTrainHfCallback/<size>  the same loop recorded by lockstep.hf.LockstepCallback,
//                          called where transformers' Trainer calls its callbacks
//   BM_SgemmPeak           torch::mm of 1024x1024 float32: the machine's matmul peak
//   BM_TrainProcess, BM_VerifyResumeProcess   `lockstep train` and `lockstep verify-resume`
//                          on the defaults, as processes: what verification costs
// Each reports items_per_second (steps/s) and GFLOP/s (6N per item plus attention, per
// token for gpt). Sizes: mlp (the defaults), gpt_tiny (defaults), gpt_mid (2 x 128, T64,
// B16) and gpt_4x256 (4 x 256, T128, B16: compute-bound). `lockstep bench` runs them with
// --benchmark_enable_random_interleaving, so Lockstep's and the peer's repetitions alternate.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "bench/bench_main.h"
#include "bench/peer.h"
#include "formats/json_file.h"
#include "trainer/models.h"
#include "trainer/trainer.h"

namespace lockstep {
namespace {

struct Size {
  const char* name;
  TrainingArgs args;
  int64_t steps;
};

Size MakeSize(const char* name, const std::string& model, int64_t layers, int64_t width, int64_t tokens, int64_t batch,
              int64_t steps) {
  Size s{name, TrainingArgs(), steps};
  s.args.model = model;
  if (model == "gpt") {
    s.args.n_layer = layers;
    s.args.n_embd = width;
    s.args.block_size = tokens;
  }
  s.args.per_device_train_batch_size = batch;
  s.args.train_samples = std::max<int64_t>(1024, batch * 8);
  s.args.eval_samples = 0;
  s.args.max_steps = steps;
  s.args.save_strategy = "no";
  s.args.logging_steps = 1e9;
  s.args.overwrite_output_dir = true;
  return s;
}

const std::vector<Size>& Sizes() {
  static const std::vector<Size> sizes = {
      MakeSize("mlp", "mlp", 0, 0, 0, 8, 600),
      MakeSize("gpt_tiny", "gpt", 2, 64, 32, 8, 150),
      MakeSize("gpt_mid", "gpt", 2, 128, 64, 16, 30),
      MakeSize("gpt_4x256", "gpt", 4, 256, 128, 16, 4),
  };
  return sizes;
}

// Floating-point operations per optimizer step: 6 per parameter per item (forward and
// backward), plus attention's 12 * layers * T * width per token for gpt (PaLM's count).
double FlopsPerStep(const TrainingArgs& a) {
  int64_t params = 0;
  for (const auto& p : MakeModel(a)->parameters()) params += p.numel();
  const double batch = static_cast<double>(a.per_device_train_batch_size);
  if (a.model != "gpt") return 6.0 * params * batch;
  const double tokens = batch * a.block_size;
  return tokens * (6.0 * params + 12.0 * a.n_layer * a.block_size * a.n_embd);
}

std::string ScratchRoot() {
  static const std::string root = [] {
    char tmpl[] = "/tmp/lockstep-train-bench-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    bench::ScratchDirs().push_back(dir);
    return dir;
  }();
  return root;
}

void Report(benchmark::State& state, const Size& size) {
  state.SetItemsProcessed(state.iterations() * size.steps);
  state.counters["GFLOP/s"] =
      benchmark::Counter(FlopsPerStep(size.args) * size.steps / 1e9 * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(size.name);
}

void RunLockstep(benchmark::State& state, bool record_steps) {
  const Size& size = Sizes()[static_cast<size_t>(state.range(0))];
  TrainingArgs args = size.args;
  args.output_dir = ScratchRoot() + "/" + size.name + (record_steps ? "" : "-nolog");
  double recording_s = 0, runtime_s = 0;
  for (auto _ : state) {
    TrainOptions options;
    options.show_progress = false;
    options.record_steps = record_steps;
    TrainResult result;
    const Status st = RunTraining(args, options, &result);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
    state.SetIterationTime(result.runtime_s);
    recording_s += result.recording_s;
    runtime_s += result.runtime_s;
  }
  Report(state, size);
  // Measured inside the loop, so machine noise between runs does not blur it; the A/B
  // against BM_TrainNoLog is the end-to-end check.
  if (record_steps) state.counters["record_share"] = recording_s / std::max(runtime_s, 1e-9);
}

void BM_Train(benchmark::State& state) { RunLockstep(state, true); }
void BM_TrainNoLog(benchmark::State& state) { RunLockstep(state, false); }

// How the peer's loop is recorded: not at all, with lockstep.Recorder, or by
// lockstep.hf.LockstepCallback called where the HF Trainer calls it.
// (kCompiled: not recorded, with the loss under torch.compile.)
enum class PythonRecording { kNone, kRecorder, kHfCallback, kCompiled };

void RunPython(benchmark::State& state, PythonRecording recording) {
  const Size& size = Sizes()[static_cast<size_t>(state.range(0))];
  std::string why;
  PythonPeer* peer = PythonPeer::Shared(&why);
  if (peer == nullptr) {
    state.SkipWithError(why.c_str());
    return;
  }
  const TrainingArgs& a = size.args;
  const nlohmann::json request = {{"op", "train"},
                                  {"model", a.model},
                                  {"steps", size.steps},
                                  {"threads", DefaultNumThreads()},
                                  {"batch_size", a.per_device_train_batch_size},
                                  {"train_samples", a.train_samples},
                                  {"input_dim", a.input_dim},
                                  {"hidden_size", a.hidden_size},
                                  {"num_labels", a.num_labels},
                                  {"vocab_size", a.vocab_size},
                                  {"block_size", a.block_size},
                                  {"n_layer", a.n_layer},
                                  {"n_head", a.n_head},
                                  {"n_embd", a.n_embd},
                                  {"dropout", a.dropout},
                                  {"learning_rate", a.learning_rate},
                                  {"weight_decay", a.weight_decay},
                                  {"max_grad_norm", a.max_grad_norm},
                                  {"seed", a.seed}};
  static int64_t run = 0;  // a fresh run directory for every run, across repetitions
  double runtime_s = 0, recording_s = 0, compile_s = 0;
  for (auto _ : state) {
    double seconds = 0;
    nlohmann::json r = request;
    if (recording == PythonRecording::kCompiled) r["compile"] = true;
    if (recording == PythonRecording::kRecorder || recording == PythonRecording::kHfCallback) {
      r["record_dir"] = ScratchRoot() + "/python-recorded-" + size.name + "-" + std::to_string(run++);
    }
    if (recording == PythonRecording::kHfCallback) r["record_with"] = "hf_callback";
    nlohmann::json answer;
    const Status st = peer->Measure(r, &seconds, &answer);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      return;
    }
    state.SetIterationTime(seconds);
    runtime_s += seconds;
    recording_s += answer.value("record_seconds", 0.0);
    compile_s += answer.value("compile_seconds", 0.0);
  }
  Report(state, size);
  // Measured inside the loop, as BM_Train's: the A/B against BM_PythonTrain is the end-to-end check.
  if (recording == PythonRecording::kCompiled) state.counters["compile_s"] = compile_s;
  if (recording == PythonRecording::kRecorder || recording == PythonRecording::kHfCallback)
    state.counters["record_share"] = recording_s / std::max(runtime_s, 1e-9);
}

void AllSizes(benchmark::internal::Benchmark* b) {
  for (size_t i = 0; i < Sizes().size(); ++i) b->Arg(static_cast<int64_t>(i));
  b->ArgName("size")->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_Train)->Apply(AllSizes);
BENCHMARK(BM_TrainNoLog)->Apply(AllSizes);
void BM_PythonTrain(benchmark::State& state) { RunPython(state, PythonRecording::kNone); }
void BM_PythonTrainRecorded(benchmark::State& state) { RunPython(state, PythonRecording::kRecorder); }
void BM_PythonTrainHfCallback(benchmark::State& state) { RunPython(state, PythonRecording::kHfCallback); }
void BM_PythonTrainCompiled(benchmark::State& state) { RunPython(state, PythonRecording::kCompiled); }
BENCHMARK(BM_PythonTrain)->Apply(AllSizes);
// Compute-bound size only (inductor compiles for tens of seconds on 2 cores; --quick skips it).
BENCHMARK(BM_PythonTrainCompiled)->Apply([](benchmark::internal::Benchmark* b) {
  b->Arg(static_cast<int64_t>(Sizes().size() - 1))
      ->ArgName("size")
      ->UseManualTime()
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
});
BENCHMARK(BM_PythonTrainRecorded)->Apply(AllSizes);
BENCHMARK(BM_PythonTrainHfCallback)->Apply(AllSizes);

// The training stall of checkpoint saves: gpt 4 x 256 (T32, B8; 37 MiB of weights and
// AdamW state per checkpoint) saving every 2nd of 8 steps, synchronously (mode 0) and with
// --save_async (mode 1). Manual time = the loop's runtime; counters: the loop's time held
// up per save (snapshot, and the wait for the previous save), its share of the runtime,
// and the end's wait for the last background save (which a longer run amortizes).
void BM_TrainSaving(benchmark::State& state) {
  const bool async = state.range(0) == 1;
  Size size = MakeSize("gpt_4x256_saving", "gpt", 4, 256, 32, 8, 8);
  size.args.save_strategy = "steps";
  size.args.save_steps = 2;
  size.args.save_async = async;
  size.args.output_dir = ScratchRoot() + (async ? "/saving-async" : "/saving-sync");
  double stall_s = 0, runtime_s = 0, end_wait_s = 0;
  int64_t saves = 0;
  for (auto _ : state) {
    TrainOptions options;
    options.show_progress = false;
    TrainResult result;
    const Status st = RunTraining(size.args, options, &result);
    if (!st.ok()) return state.SkipWithError(st.ToString().c_str());
    state.SetIterationTime(result.runtime_s);
    stall_s += result.save_stall_s;
    end_wait_s += result.final_save_wait_s;
    runtime_s += result.runtime_s;
    saves += static_cast<int64_t>(result.saved_steps.size());
  }
  Report(state, size);
  state.SetLabel(async ? "save_async" : "sync");
  state.counters["stall_per_save_ms"] = 1e3 * stall_s / static_cast<double>(std::max<int64_t>(saves, 1));
  state.counters["stall_share"] = stall_s / std::max(runtime_s, 1e-9);
  state.counters["end_wait_ms"] = 1e3 * end_wait_s / static_cast<double>(state.iterations());
}
BENCHMARK(BM_TrainSaving)
    ->Arg(0)
    ->Arg(1)
    ->ArgName("async")
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// Data-parallel scaling on this machine: gpt_mid (2 x 128, T64, B16 per rank) for 30 steps
// as 1 process and as a 2-rank job (Gloo on loopback), each rank on one thread. Manual
// time = rank 0's training loop (runtime_s, start-up excluded); items are samples, so
// items_per_second compares the two directly; allreduce_ms is rank 0's time in the
// gradient all-reduce per step (waiting for the slower rank included), or --world_invariant's
// gathers of every unit's gradient.
void BM_DataParallel(benchmark::State& state) {
  const int64_t ranks = state.range(0), unit = state.range(1), steps = 30;
  const std::string dir = ScratchRoot() + "/dp" + std::to_string(ranks) + "u" + std::to_string(unit);
  const std::string result = dir + ".json";
  const std::string command =
      std::string(LOCKSTEP_BIN) + " train --model gpt --n_layer 2 --n_embd 128 --block_size 64" +
      " --per_device_train_batch_size 16 --max_steps " + std::to_string(steps) +
      " --save_strategy no --eval_samples 0 --logging_steps 1000 --num_threads 1 --quiet" +
      " --json --overwrite_output_dir true --output_dir " + dir +
      (ranks > 1 ? " --nproc_per_node " + std::to_string(ranks) : "") +
      (unit > 0 ? " --world_invariant true --world_invariant_unit " + std::to_string(unit) : "") + " > " + result;
  double allreduce_s = 0;
  for (auto _ : state) {
    if (bench::RunQuietly({"/bin/sh", "-c", command}) != 0) return state.SkipWithError("lockstep train failed");
    nlohmann::json r;
    if (!ReadJsonFile(result, &r).ok()) return state.SkipWithError("no result JSON");
    state.SetIterationTime(r.value("runtime_s", 0.0));
    allreduce_s += r.value("allreduce_s", 0.0);
  }
  state.SetItemsProcessed(state.iterations() * steps * 16 * ranks);
  if (ranks > 1) state.counters["allreduce_ms"] = 1e3 * allreduce_s / static_cast<double>(state.iterations() * steps);
  state.SetLabel(std::to_string(ranks) + (ranks > 1 ? " ranks" : " rank") +
                 (unit > 0 ? ", world_invariant unit " + std::to_string(unit) : ""));
}
BENCHMARK(BM_DataParallel)
    ->Args({1, 0})
    ->Args({2, 0})
    ->Args({2, 1})
    ->Args({2, 4})
    ->Args({2, 16})
    ->ArgNames({"ranks", "invariant_unit"})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// `lockstep verify-resume` on the defaults against one `lockstep train` of the same run,
// both as a user runs them (processes, start-up included).
void RunProcess(benchmark::State& state, const std::string& command) {
  const std::string dir = ScratchRoot() + "/" + command;
  for (auto _ : state) {
    const int code =
        bench::RunQuietly({LOCKSTEP_BIN, command, "--output_dir", dir, "--overwrite_output_dir", "true", "--quiet"});
    if (code != 0) return state.SkipWithError(("lockstep " + command + " failed").c_str());
  }
  // What verification cannot avoid: its children's training loops, from its report.
  nlohmann::json report;
  if (command == "verify-resume" && ReadJsonFile(dir + "/verify_report.json", &report).ok()) {
    state.counters["children_training_s"] = report.value("children_training_s", 0.0);
  }
}
void BM_TrainProcess(benchmark::State& state) { RunProcess(state, "train"); }
void BM_VerifyResumeProcess(benchmark::State& state) { RunProcess(state, "verify-resume"); }
BENCHMARK(BM_TrainProcess)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_VerifyResumeProcess)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_SgemmPeak(benchmark::State& state) {
  const int64_t n = 1024;
  torch::manual_seed(0);
  const torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
  torch::Tensor c = torch::mm(a, b);  // warm up the BLAS threads
  for (auto _ : state) {
    c = torch::mm(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n / 1e9 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["threads"] = static_cast<double>(DefaultNumThreads());
}
BENCHMARK(BM_SgemmPeak)->Unit(benchmark::kMillisecond)->MinTime(0.5)->UseRealTime();

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::bench::RunBenchmarks(argc, argv); }
