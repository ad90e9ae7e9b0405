// `lockstep diff` on two 1 GiB checkpoints with a warm page cache: read-bound, and faster
// than h5diff on the same pair of HDF5 files. Set LOCKSTEP_BENCH_DIFF_MIB for another size.
//   BM_DiffH5           DiffCheckpoints on two Lockstep model.h5 files (bytes/s of both)
//   BM_DiffSafetensors  the same tensors as two safetensors files, streamed in chunks
//   BM_ReadBound        reading both safetensors files in 4 MiB chunks, nothing else: the ceiling
//   BM_DiffVsH5diff     `lockstep diff a.h5 b.h5` and `h5diff a.h5 b.h5` as processes,
//                       interleaved in each iteration; counters give both rates and the ratio
// The pairs are identical (each file is a copy of the other), so every byte is compared;
// a difference would only let a tool stop early.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "diff/tensor_diff.h"
#include "formats/file_util.h"
#include "formats/tensor_file.h"

namespace lockstep {
namespace {

struct Pair {
  std::string a_h5, b_h5, a_st, b_st;
  uint64_t bytes = 0;  // tensor bytes of one checkpoint
};

uint64_t SizeMiB() {
  const char* v = std::getenv("LOCKSTEP_BENCH_DIFF_MIB");
  return v ? std::strtoull(v, nullptr, 10) : 1024;
}

// 16 float32 tensors of equal size and varied values.
std::vector<TensorData> MakeTensors(uint64_t total) {
  std::vector<TensorData> out;
  const int64_t per = static_cast<int64_t>(total / 16 / 4);
  uint32_t x = 12345;
  for (int k = 0; k < 16; ++k) {
    TensorData t;
    t.name = "layer." + std::to_string(k) + ".weight";
    t.shape = {per};
    t.bytes.resize(static_cast<size_t>(per) * 4);
    auto* f = reinterpret_cast<float*>(t.bytes.data());
    for (int64_t i = 0; i < per; ++i) f[i] = static_cast<float>((x = x * 1664525u + 1013904223u) >> 8) * 1e-7f;
    out.push_back(std::move(t));
  }
  return out;
}

void WriteSafetensors(const std::string& path, const std::vector<TensorData>& tensors) {
  std::string header = "{";
  uint64_t at = 0;
  for (const auto& t : tensors) {
    header += (at ? "," : "") + std::string("\"") + t.name + "\":{\"dtype\":\"F32\",\"shape\":[" +
              std::to_string(t.shape[0]) + "],\"data_offsets\":[" + std::to_string(at) + "," +
              std::to_string(at + t.bytes.size()) + "]}";
    at += t.bytes.size();
  }
  header += "}";
  FILE* f = std::fopen(path.c_str(), "wb");
  const uint64_t n = header.size();
  std::fwrite(&n, 8, 1, f);
  std::fwrite(header.data(), 1, header.size(), f);
  for (const auto& t : tensors) std::fwrite(t.bytes.data(), 1, t.bytes.size(), f);
  std::fclose(f);
}

const Pair& GetPair() {
  static Pair* p = [] {
    auto* pair = new Pair;
    char tmpl[] = "/tmp/lockstep-diff-bench-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    bench::ScratchDirs().push_back(dir);
    const auto tensors = MakeTensors(SizeMiB() << 20);
    for (const auto& t : tensors) pair->bytes += t.bytes.size();
    pair->a_h5 = dir + "/a.h5";
    pair->b_h5 = dir + "/b.h5";
    pair->a_st = dir + "/a.safetensors";
    pair->b_st = dir + "/b.safetensors";
    if (!WriteTensorFile(pair->a_h5, tensors).ok() || !WriteTensorFile(pair->b_h5, tensors).ok()) std::abort();
    WriteSafetensors(pair->a_st, tensors);
    WriteSafetensors(pair->b_st, tensors);
    return pair;
  }();
  return *p;
}

void Diff(benchmark::State& state, const std::string& a, const std::string& b) {
  for (auto _ : state) {
    CheckpointDiff d;
    const Status st = DiffCheckpoints(a, b, Tolerance(), &d);
    if (!st.ok() || !d.identical()) {
      state.SkipWithError(st.ok() ? "the pair should be identical" : st.ToString().c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * GetPair().bytes));
}

void BM_DiffH5(benchmark::State& state) { Diff(state, GetPair().a_h5, GetPair().b_h5); }
void BM_DiffSafetensors(benchmark::State& state) { Diff(state, GetPair().a_st, GetPair().b_st); }

// Reads `path` in 4 MiB chunks into one reused buffer; false on an error.
bool ReadThrough(const std::string& path, std::vector<char>* buffer) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  while (std::fread(buffer->data(), 1, buffer->size(), f) == buffer->size()) {
  }
  const bool ok = !std::ferror(f);
  std::fclose(f);
  return ok;
}

void BM_ReadBound(benchmark::State& state) {
  std::vector<char> buffer(4u << 20);
  for (auto _ : state) {
    if (!ReadThrough(GetPair().a_st, &buffer) || !ReadThrough(GetPair().b_st, &buffer)) {
      state.SkipWithError("read failed");
      break;
    }
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * GetPair().bytes));
}

double Seconds(const std::vector<std::string>& argv, int want_code) {
  const auto t0 = std::chrono::steady_clock::now();
  const int code = bench::RunQuietly(argv);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return code == want_code ? s : -1;
}

void BM_DiffVsH5diff(benchmark::State& state) {
  const Pair& p = GetPair();
  double lockstep = 0, h5diff = 0;
  for (auto _ : state) {
    const double l = Seconds({LOCKSTEP_BIN, "diff", p.a_h5, p.b_h5}, 0);
    const double h = Seconds({"h5diff", p.a_h5, p.b_h5}, 0);
    if (l < 0 || h < 0) {
      state.SkipWithError(l < 0 ? "lockstep diff failed" : "h5diff failed (is hdf5-tools installed?)");
      break;
    }
    lockstep += l;
    h5diff += h;
  }
  const double gb = 2.0 * p.bytes * state.iterations() / 1e9;
  state.counters["lockstep_GBps"] = gb / lockstep;
  state.counters["h5diff_GBps"] = gb / h5diff;
  state.counters["speedup"] = h5diff / lockstep;
}

BENCHMARK(BM_DiffH5)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DiffSafetensors)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ReadBound)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_DiffVsH5diff)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) { return lockstep::bench::RunBenchmarks(argc, argv); }
