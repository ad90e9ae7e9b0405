// Audit speed of `lockstep inspect` on a 20-checkpoint run (2.1 MB per checkpoint).
//   BM_Audit         the default audit: manifests, sizes, small JSON files, step log
//   BM_AuditVerify   --verify: every checksum recomputed, streaming (bytes/s reported)
//   BM_ReadFiles     the bound: read(2) of the same files into one buffer, nothing else
// The figure that matters is BM_AuditVerify's bytes/s over BM_ReadFiles' (same run).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/file_util.h"
#include "inspect/audit.h"
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
    fx->run = std::string(::mkdtemp(tmpl)) + "/run";
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

BENCHMARK(BM_Audit)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AuditVerify)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadFiles)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  lockstep::RemoveTree(fs::path(lockstep::GetFixture().run).parent_path().string());
  return 0;
}
