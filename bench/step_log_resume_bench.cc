// What proving the step log costs a resume, at 1,000 and 1,000,000 steps.
//
// Before issue 10, a resume continued the log in O(1): it read the one frame that ends
// at the checkpoint's step and cut the file there (BM_ContinueUnverified reproduces that).
// Now it also reads every byte up to the cut once, through XXH3-128, and compares the
// digest the checkpoint stored, so damage anywhere in the history is found before the log
// is continued (BM_ContinueVerified: StepLogWriter::OpenForAppend). The logs are shaped
// like the trainer's: one record per step with digests, full RNG states every 100 steps.
// The page cache is warm, as on a resume right after a preemption.
//
//   build/bench/step_log_resume_bench [--benchmark_repetitions=5 --benchmark_enable_random_interleaving=true]
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "bench/bench_main.h"
#include "formats/base64.h"
#include "formats/checksum.h"
#include "formats/step_log.h"

namespace lockstep {
namespace {

struct Log {
  std::string path;
  uint64_t end = 0;         // the checkpoint's cut: the last frame's end
  uint64_t last_frame = 0;  // where that frame begins
  std::string digest;       // of the bytes up to the cut
};

StepRecord Record(int64_t step, std::mt19937_64* gen) {
  StepRecord r;
  r.step = step;
  GeneratorState digest;
  digest.size = 5056;
  digest.xxh3_128 = Xxh3Hex(&step, sizeof(step));
  if ((step - 1) % 100 == 0) {  // full states: 5056 incompressible bytes each
    std::vector<uint8_t> state(5056);
    for (auto& b : state) b = static_cast<uint8_t>((*gen)());
    digest.base64 = Base64Encode(state);
  }
  r.rng = {{step_key::kCpu, digest}, {step_key::kSamplerGenerator, digest}};
  std::vector<int64_t> ids(8);
  for (auto& id : ids) id = static_cast<int64_t>((*gen)() % 40000);
  r.batches = {ids};
  r.epoch = static_cast<double>(step) / 5000.0;
  r.sampler = SamplerPosition{step / 5000, step % 5000, 8 * (step % 5000)};
  r.loss = static_cast<float>(2.0 + 1.0 / static_cast<double>(step));
  r.lr = 5e-5;
  r.grad_norm = 3.3f;
  r.wall_time = static_cast<double>(step) * 1e-3;
  return r;
}

const Log& GetLog(int64_t steps) {
  static std::map<int64_t, Log>* logs = new std::map<int64_t, Log>;
  auto it = logs->find(steps);
  if (it != logs->end()) return it->second;
  static std::string root = [] {
    char tmpl[] = "/tmp/lockstep-steplog-bench-XXXXXX";
    std::string r = ::mkdtemp(tmpl);
    bench::ScratchDirs().push_back(r);
    return r;
  }();
  Log log;
  log.path = root + "/steps-" + std::to_string(steps) + ".jsonl.zst";
  std::unique_ptr<StepLogWriter> w;
  std::mt19937_64 gen(steps);
  Status st = StepLogWriter::Create(log.path, {{"bench", true}}, StepLogOptions(), &w);
  for (int64_t s = 1; st.ok() && s <= steps; ++s) st = w->Append(Record(s, &gen));
  if (st.ok()) st = w->Flush(/*sync=*/true);
  if (!st.ok()) {
    std::fprintf(stderr, "step_log_resume_bench: %s\n", st.ToString().c_str());
    std::exit(2);
  }
  log.end = w->bytes_written();
  log.last_frame = w->last_frame_start();
  log.digest = w->digest();
  w.reset();
  return logs->emplace(steps, log).first->second;
}

// The pre-issue-10 resume: one frame read, then the cut.
void BM_ContinueUnverified(benchmark::State& state) {
  const Log& log = GetLog(state.range(0));
  for (auto _ : state) {
    StepLogContents frame;
    Status st = ReadStepLogFrame(log.path, log.last_frame, log.end, &frame);
    const int fd = ::open(log.path.c_str(), O_WRONLY | O_CLOEXEC);
    if (!st.ok() || fd < 0 || ::ftruncate(fd, static_cast<off_t>(log.end)) != 0 || ::fsync(fd) != 0) {
      state.SkipWithError("continue failed");
    }
    ::close(fd);
  }
  state.counters["log_MB"] = static_cast<double>(log.end) / 1e6;
}

// Today's resume: the same frame read, then every byte up to the cut proven by its digest.
void BM_ContinueVerified(benchmark::State& state) {
  const Log& log = GetLog(state.range(0));
  for (auto _ : state) {
    StepLogContents frame;
    std::unique_ptr<StepLogWriter> w;
    Status st = ReadStepLogFrame(log.path, log.last_frame, log.end, &frame);
    if (st.ok()) st = StepLogWriter::OpenForAppend(log.path, log.end, log.digest, StepLogOptions(), &w);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  state.counters["log_MB"] = static_cast<double>(log.end) / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * log.end));
}

// What recording costs a training step: appending the trainer's record (frames of 16,
// zstd level 3, written without fsync as between checkpoints). Time is per record; the
// mlp defaults train a step in about 650 us, the figure to hold it against.
void BM_AppendRecord(benchmark::State& state) {
  std::mt19937_64 gen(1);
  std::vector<StepRecord> records;
  for (int64_t s = 1; s <= 1600; ++s) records.push_back(Record(s, &gen));
  char tmpl[] = "/tmp/lockstep-append-bench-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  bench::ScratchDirs().push_back(dir);
  std::unique_ptr<StepLogWriter> w;
  if (!StepLogWriter::Create(dir + "/steps.jsonl.zst", {{"bench", true}}, StepLogOptions(), &w).ok()) std::exit(2);
  size_t i = 0;
  for (auto _ : state) {
    if (!w->Append(records[i++ % records.size()]).ok()) {
      state.SkipWithError("append failed");
      break;
    }
  }
}

BENCHMARK(BM_AppendRecord)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ContinueUnverified)->Arg(1000)->Arg(1000000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ContinueVerified)->Arg(1000)->Arg(1000000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::bench::RunBenchmarks(argc, argv); }
