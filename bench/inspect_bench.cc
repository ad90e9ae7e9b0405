// Audit speed of `lockstep inspect` on a 20-checkpoint run (2.1 MB per checkpoint).
//   BM_Audit         the default audit: manifests, sizes, small JSON files, step log
//   BM_AuditVerify   --verify: every checksum recomputed, streaming (bytes/s reported)
//   BM_HashFiles     what --verify adds per byte: FileXxh3Hex over the same files
//   BM_ReadFiles     the bound: read(2) of the same files into one buffer, nothing else
//   BM_InspectProcess      `lockstep inspect RUN` as a user runs it: exec, start, audit, exit
//   BM_LockstepStart       `lockstep --version`: the start-up cost alone (no LibTorch)
//   BM_TrainHelperStart    `lockstep-train --version`: what start-up costs with LibTorch
//   BM_TrainHelp           `lockstep train --help`: answered without LibTorch
//   BM_TensorStats/<dtype> what `lockstep inspect CHECKPOINT` computes per tensor (min, max,
//                          mean, std, NaN/Inf, XXH3) over 64 MiB in memory (bytes/s)
//   BM_TensorHash          its XXH3 alone over the same bytes: the yardstick
// The process benchmarks report wall time (their CPU column is the parent's alone).
// The figures that matter: BM_HashFiles' bytes/s over BM_ReadFiles' (the per-byte cost
// of --verify against the bare read; BM_AuditVerify adds the audit's fixed costs), and
// BM_InspectProcess against one second (and against BM_TrainHelperStart).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "formats/checksum.h"
#include "formats/file_util.h"
#include "inspect/audit.h"
#include "inspect/tensor_stats.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

struct Fixture {
  std::string run;
  std::vector<std::string> files;
  uint64_t bytes = 0;
};

const Fixture& GetFixture() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    char tmpl[] = "/tmp/lockstep-inspect-bench-XXXXXX";
    const std::string scratch = ::mkdtemp(tmpl);
    bench::ScratchDirs().push_back(scratch);
    fx->run = scratch + "/run";
    TrainingArgs a;
    a.output_dir = fx->run;
    a.hidden_size = 4096;
    a.max_steps = 20;
    a.save_steps = 1;
    a.eval_samples = 0;
    TrainOptions o;
    o.show_progress = false;
    TrainResult r;
    const Status st = RunTraining(a, o, &r);
    if (!st.ok()) {
      std::fprintf(stderr, "inspect_bench: setup failed: %s\n", st.ToString().c_str());
      std::exit(2);
    }
    for (const auto& d : fs::directory_iterator(fx->run)) {
      if (d.path().filename().string().rfind("checkpoint-", 0) != 0) continue;
      for (const auto& e : fs::directory_iterator(d.path())) {
        fx->files.push_back(e.path().string());
        fx->bytes += e.file_size();
      }
    }
    return fx;
  }();
  return *f;
}

void RunAudit(benchmark::State& state, bool verify) {
  const Fixture& f = GetFixture();
  AuditOptions o;
  o.verify = verify;
  for (auto _ : state) {
    AuditReport r;
    const Status st = AuditRun(f.run, o, &r);
    if (!st.ok() || !r.healthy() || r.checkpoints.size() != 20) {
      state.SkipWithError("audit failed or found problems");
      break;
    }
  }
  if (verify) state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.bytes));
  state.counters["checkpoints"] = 20;
}

void BM_Audit(benchmark::State& state) { RunAudit(state, false); }
void BM_AuditVerify(benchmark::State& state) { RunAudit(state, true); }

void BM_HashFiles(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    for (const auto& p : f.files) {
      std::string hex;
      if (!FileXxh3Hex(p, &hex).ok()) state.SkipWithError(("cannot hash " + p).c_str());
      benchmark::DoNotOptimize(hex);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.bytes));
}

void BM_ReadFiles(benchmark::State& state) {
  const Fixture& f = GetFixture();
  std::vector<char> buf(1 << 20);
  for (auto _ : state) {
    for (const auto& p : f.files) {
      const int fd = ::open(p.c_str(), O_RDONLY);
      while (::read(fd, buf.data(), buf.size()) > 0) {
      }
      ::close(fd);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.bytes));
}

void RunProcess(benchmark::State& state, const std::vector<std::string>& argv) {
  for (auto _ : state) {
    if (bench::RunQuietly(argv) != 0) {
      state.SkipWithError(("exit code not 0: " + argv[0]).c_str());
      break;
    }
  }
}

void BM_InspectProcess(benchmark::State& state) {
  RunProcess(state, {LOCKSTEP_BIN, "inspect", GetFixture().run});
  state.counters["checkpoints"] = 20;
}
void BM_LockstepStart(benchmark::State& state) { RunProcess(state, {LOCKSTEP_BIN, "--version"}); }
void BM_TrainHelperStart(benchmark::State& state) { RunProcess(state, {LOCKSTEP_BIN "-train", "--version"}); }
void BM_TrainHelp(benchmark::State& state) { RunProcess(state, {LOCKSTEP_BIN, "train", "--help"}); }

const std::vector<uint8_t>& StatsBuffer() {
  static const std::vector<uint8_t> buffer = [] {
    std::vector<uint8_t> b(64u << 20);
    uint32_t x = 1;
    for (size_t i = 0; i + 4 <= b.size(); i += 4) {
      const float f = static_cast<float>((x = x * 1664525u + 1013904223u) >> 8) * 1e-6f - 8.0f;
      std::memcpy(&b[i], &f, 4);
    }
    return b;
  }();
  return buffer;
}

void BM_TensorStats(benchmark::State& state, const char* dtype) {
  const auto& b = StatsBuffer();
  for (auto _ : state) {
    TensorStats stats(dtype);
    for (size_t at = 0; at < b.size(); at += 4u << 20) stats.Add(b.data() + at, 4u << 20);  // as shown: 4 MiB chunks
    benchmark::DoNotOptimize(stats.ToJson());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.size()));
}

void BM_TensorHash(benchmark::State& state) {
  const auto& b = StatsBuffer();
  for (auto _ : state) benchmark::DoNotOptimize(Xxh3Hex(b.data(), b.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.size()));
}

BENCHMARK_CAPTURE(BM_TensorStats, float32, "float32")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_TensorStats, bfloat16, "bfloat16")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TensorHash)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Audit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AuditVerify)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HashFiles)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadFiles)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_InspectProcess)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LockstepStart)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainHelperStart)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainHelp)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::bench::RunBenchmarks(argc, argv); }
