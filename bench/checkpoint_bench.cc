// Checkpoint save and load, against the raw bytes and against the Python peer, in one run.
//
//   BM_Save/<layers>       SaveCheckpoint of model.h5 + optimizer.h5 (weights + AdamW
//                          moments): staging, write, fsync, manifest, rename
//   BM_RawWrite/<layers>   the same bytes written with write(2) to two files, then fsync:
//                          the bound
//   BM_TorchSave/<layers>  the Python peer's torch.save of tensors of the same shapes, then
//                          fsync
//   BM_Load/<layers>       a resume's share: both files read into the model and the
//                          optimizer, every checksum verified on the way
//   BM_RawRead/<layers>    read(2) of the same files into one buffer
//   BM_TorchLoad/<layers>  the peer's torch.load of its file
// Files are in the page cache for every load alike (each was just written). The sizes are
// gpt models of <layers> x 512 (2: 79 MiB, 10: 375 MiB of weights and moments).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "bench/bench_main.h"
#include "bench/peer.h"
#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "trainer/checkpoint_io.h"
#include "trainer/models.h"

namespace lockstep {
namespace {

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A gpt model and its AdamW state after one update, and where to save them.
struct Fixture {
  std::shared_ptr<Model> model;
  std::unique_ptr<AdamW> optimizer;
  std::string dir;
  uint64_t bytes = 0;  // weights + both moments

  std::vector<StateFile> pieces() {
    return {ModelStateFile(model.get()), OptimizerStateFile(optimizer.get(), torch::Device(torch::kCPU))};
  }
};

Fixture& GetFixture(int64_t layers) {
  static std::map<int64_t, std::unique_ptr<Fixture>> fixtures;
  auto& f = fixtures[layers];
  if (f) return *f;
  f = std::make_unique<Fixture>();
  TrainingArgs a;
  a.model = "gpt";
  a.n_layer = layers;
  a.n_embd = 512;
  a.n_head = 8;
  torch::manual_seed(0);
  f->model = MakeModel(a);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& p : f->model->named_parameters()) {
    params.emplace_back(p.key(), p.value());
    p.value().mutable_grad() = torch::randn_like(p.value());
    f->bytes += 3 * p.value().numel() * sizeof(float);
  }
  f->optimizer = std::make_unique<AdamW>(params, std::set<std::string>(), AdamWOptions());
  f->optimizer->Step(1e-3);
  char tmpl[] = "/var/tmp/lockstep-checkpoint-bench-XXXXXX";  // a disk, not a tmpfs
  f->dir = ::mkdtemp(tmpl);
  bench::ScratchDirs().push_back(f->dir);
  return *f;
}

void Fail(benchmark::State& state, const Status& st) { state.SkipWithError(st.ToString().c_str()); }

// Times `body` once per iteration (manual time) and counts the checkpoint's bytes; the
// first failure skips the benchmark with its Status.
template <typename Body>
void TimeEach(benchmark::State& state, const Fixture& f, Body body) {
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const Status st = body();
    state.SetIterationTime(Since(start));
    if (!st.ok()) return Fail(state, st);
  }
  state.SetBytesProcessed(static_cast<int64_t>(f.bytes) * state.iterations());
}

// A committed checkpoint of the fixture, for the loads to read.
Status SavedCheckpoint(Fixture& f, std::string* dir) { return SaveCheckpoint(f.dir + "/run", 1, f.pieces(), dir); }

void BM_Save(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  TimeEach(state, f, [&f] {
    std::string dir;
    return SavedCheckpoint(f, &dir);
  });
}

// Writes each of `pieces` (memory, bytes) in turn to a new file with write(2), then fsyncs.
Status WriteRaw(const std::string& path, const std::vector<std::pair<const void*, size_t>>& pieces) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(path + ": cannot create");
  bool ok = true;
  for (const auto& [data, size] : pieces) {
    for (size_t done = 0; ok && done < size;) {
      const ssize_t n = ::write(fd, static_cast<const char*>(data) + done, size - done);
      ok = n > 0;
      done += ok ? static_cast<size_t>(n) : 0;
    }
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  return ok ? Status::Ok() : Status::IOError(path + ": write failed");
}

void BM_RawWrite(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  // The same bytes from the same memory: the weights to one file, the moments to another.
  std::vector<std::pair<const void*, size_t>> weights, moments;
  for (const auto& [name, p] : f.optimizer->params()) {
    const auto& s = f.optimizer->state()[name];
    const size_t n = static_cast<size_t>(p.numel()) * sizeof(float);
    weights.emplace_back(p.data_ptr(), n);
    moments.emplace_back(s.exp_avg.data_ptr(), n);
    moments.emplace_back(s.exp_avg_sq.data_ptr(), n);
  }
  TimeEach(state, f, [&] {
    const Status st = WriteRaw(f.dir + "/raw-weights", weights);
    return st.ok() ? WriteRaw(f.dir + "/raw-moments", moments) : st;
  });
}

void BM_Load(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  std::string dir;
  const Status saved = SavedCheckpoint(f, &dir);
  if (!saved.ok()) return Fail(state, saved);
  TimeEach(state, f, [&] {
    // As a resume: the small files verified whole, the tensor files as they load.
    const Status st = ValidateCheckpoint(dir, VerifyMode::kChecksumsOnLoad);
    return st.ok() ? LoadCheckpoint(dir, f.pieces(), VerifyMode::kChecksumsOnLoad) : st;
  });
}

void BM_RawRead(benchmark::State& state) {
  Fixture& f = GetFixture(state.range(0));
  std::string dir;
  const Status saved = SavedCheckpoint(f, &dir);
  if (!saved.ok()) return Fail(state, saved);
  std::string buffer(f.bytes + (1 << 20), '\0');
  TimeEach(state, f, [&] {
    size_t at = 0;
    for (const char* name : {kModelFile, kOptimizerStateFile}) {
      const int fd = ::open((dir + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return Status::IOError(dir + "/" + name + ": cannot open");
      for (ssize_t n; at < buffer.size() && (n = ::read(fd, &buffer[at], buffer.size() - at)) > 0;) {
        at += static_cast<size_t>(n);
      }
      ::close(fd);
    }
    benchmark::DoNotOptimize(buffer.data());
    return Status::Ok();
  });
}

// The peer's file holds tensors of the model's shapes, three times (weights, two moments).
nlohmann::json PeerShapes(Fixture& f) {
  nlohmann::json shapes = nlohmann::json::object();
  for (const auto& [name, p] : f.optimizer->params()) {
    for (const char* prefix : {"", "exp_avg/", "exp_avg_sq/"}) shapes[prefix + name] = p.sizes().vec();
  }
  return shapes;
}

void RunPeer(benchmark::State& state, const std::string& op) {
  Fixture& f = GetFixture(state.range(0));
  std::string why;
  PythonPeer* peer = PythonPeer::Shared(&why);
  if (peer == nullptr) return state.SkipWithError(why.c_str());
  const std::string path = f.dir + "/peer.pt";
  double seconds = 0;
  if (op == "load") {  // its file first, as the loads above save first
    const Status st = peer->Measure({{"op", "save"}, {"path", path}, {"shapes", PeerShapes(f)}}, &seconds);
    if (!st.ok()) return Fail(state, st);
  }
  const nlohmann::json request = op == "save"
                                     ? nlohmann::json{{"op", "save"}, {"path", path}, {"shapes", PeerShapes(f)}}
                                     : nlohmann::json{{"op", "load"}, {"path", path}};
  for (auto _ : state) {
    const Status st = peer->Measure(request, &seconds);
    if (!st.ok()) return Fail(state, st);
    state.SetIterationTime(seconds);
  }
  state.SetBytesProcessed(static_cast<int64_t>(f.bytes) * state.iterations());
}
void BM_TorchSave(benchmark::State& state) { RunPeer(state, "save"); }
void BM_TorchLoad(benchmark::State& state) { RunPeer(state, "load"); }

void Sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("layers")->Arg(2)->Arg(10)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_Save)->Apply(Sizes);
BENCHMARK(BM_RawWrite)->Apply(Sizes);
BENCHMARK(BM_TorchSave)->Apply(Sizes);
BENCHMARK(BM_Load)->Apply(Sizes);
BENCHMARK(BM_RawRead)->Apply(Sizes);
BENCHMARK(BM_TorchLoad)->Apply(Sizes);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::bench::RunBenchmarks(argc, argv); }
