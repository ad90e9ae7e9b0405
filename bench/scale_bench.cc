// `lockstep diff`, `inspect --verify` and `inspect` at the sizes users have: two checkpoints
// of each layout, written by the .venv's torch (bench/write_scale_checkpoints.py:
// safetensors, torch.save, torch.distributed.checkpoint) and by Lockstep (.h5), 64 float32
// tensors that differ in one element by 1 ulp. Each iteration reads the same bytes with
// read(2) (the yardstick) and runs the commands as processes, interleaved; counters give
// each command's speed as a share of read(2)'s (1.0: as fast as reading) and its peak RSS
// in MiB (wait4's ru_maxrss). Sizes: LOCKSTEP_BENCH_SCALE_MIB (default "256,1024"; the
// docs' table adds 4096), one size's files on disk at a time; LOCKSTEP_BENCH_SCALE_LAYOUTS
// (default "safetensors,dcp,pt,h5") keeps a 4 GiB run to the disk it has.
//   BM_Scale/<layout>/mib:<N>   counters diff_vs_read, diff_peak_rss_mib, verify_vs_read,
//                               verify_peak_rss_mib, inspect_vs_read, inspect_peak_rss_mib,
//                               and each command's seconds (diff_s, verify_s, inspect_s)
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "formats/file_util.h"
#include "formats/tensor_file.h"
#include "process/spawn.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

struct Layout {
  const char* name;
  const char* a;
  const char* b;
};
constexpr Layout kLayouts[] = {{"safetensors", "a.safetensors", "b.safetensors"},
                               {"dcp", "a_dcp", "b_dcp"},
                               {"pt", "a.pt", "b.pt"},
                               {"h5", "a.h5", "b.h5"}};

// The comma-separated list in the environment variable `name`, else `fallback`.
std::vector<std::string> ListFrom(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  std::stringstream list(v && *v ? v : fallback);
  std::vector<std::string> out;
  for (std::string part; std::getline(list, part, ',');) out.push_back(part);
  return out;
}

std::vector<std::string> Layouts() { return ListFrom("LOCKSTEP_BENCH_SCALE_LAYOUTS", "safetensors,dcp,pt,h5"); }

bool Wanted(const std::string& layout) {
  const auto all = Layouts();
  return std::find(all.begin(), all.end(), layout) != all.end();
}

// Lockstep's own layout: the same shapes, B with one element moved by 1 ulp.
bool WriteH5Pair(const std::string& dir, uint64_t mib) {
  const int64_t per = static_cast<int64_t>((mib << 20) / 64 / 4);
  std::vector<TensorData> tensors;
  uint32_t x = 12345;
  for (int k = 0; k < 64; ++k) {
    TensorData t;
    t.name = "layers." + std::to_string(k) + ".weight";
    t.shape = {per};
    t.bytes.resize(static_cast<size_t>(per) * 4);
    auto* f = reinterpret_cast<float*>(t.bytes.data());
    for (int64_t i = 0; i < per; ++i) f[i] = static_cast<float>((x = x * 1664525u + 1013904223u) >> 8) * 1e-7f;
    tensors.push_back(std::move(t));
  }
  if (!WriteTensorFile(dir + "/a.h5", tensors).ok()) return false;
  tensors[32].bytes[static_cast<size_t>(per / 2) * 4] ^= 1;
  return WriteTensorFile(dir + "/b.h5", tensors).ok();
}

// The directory holding the pair of `mib`; the previous size's is removed first (disk).
const std::string& DirFor(uint64_t mib, std::string* error) {
  static uint64_t current = 0;
  static std::string dir;
  if (current == mib) return dir;
  if (!dir.empty()) RemoveTree(dir);
  current = 0;
  char tmpl[] = "/tmp/lockstep-scale-bench-XXXXXX";
  dir = ::mkdtemp(tmpl);
  bench::ScratchDirs().push_back(dir);
  std::vector<std::string> writer = {LOCKSTEP_VENV_PYTHON, LOCKSTEP_SCALE_WRITER, dir, std::to_string(mib)};
  for (const auto& layout : Layouts()) {
    if (layout != "h5") writer.push_back(layout);
  }
  if (writer.size() > 4 && bench::RunQuietly(writer) != 0) {
    *error = "cannot write the checkpoints with " LOCKSTEP_VENV_PYTHON " (scripts/python-env.sh makes the .venv)";
  } else if (Wanted("h5") && !WriteH5Pair(dir, mib)) {
    *error = "cannot write the .h5 pair in " + dir;
  } else {
    current = mib;
  }
  return dir;
}

struct Measured {
  double seconds = 0, peak_mib = 0;
  int code = -1;
};

// Runs argv with its output discarded: its wall time, exit code and peak RSS.
Measured Run(const std::vector<std::string>& argv) {
  SpawnOptions quiet;
  quiet.Open(STDOUT_FILENO, "/dev/null", O_WRONLY).Dup(STDERR_FILENO, STDOUT_FILENO);
  Measured m;
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = -1;
  if (!Spawn(argv, quiet, &pid).ok()) return m;
  int status = 0;
  struct rusage usage {};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.peak_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;
  m.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return m;
}

// read(2) of every file of `paths` (files or directories) in 4 MiB pieces: its seconds.
double ReadSeconds(const std::vector<std::string>& paths) {
  std::vector<char> buffer(4u << 20);
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& p : paths) {
    std::vector<std::string> files = {p};
    if (fs::is_directory(p)) {
      files.clear();
      for (const auto& rel : FilesBelow(p)) files.push_back(p + "/" + rel);
    }
    for (const auto& f : files) {
      const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return -1;
      while (::read(fd, buffer.data(), buffer.size()) > 0) {
      }
      ::close(fd);
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void BM_Scale(benchmark::State& state, Layout layout, uint64_t mib) {
  std::string error;
  const std::string& dir = DirFor(mib, &error);
  if (!error.empty()) return state.SkipWithError(error.c_str());
  const std::string a = dir + "/" + layout.a, b = dir + "/" + layout.b;
  double read2 = 0, read1 = 0;
  Measured diff, verify, inspect;
  for (auto _ : state) {
    read2 += ReadSeconds({a, b});
    const Measured d = Run({LOCKSTEP_BIN, "diff", a, b});
    read1 += ReadSeconds({a});
    const Measured v = Run({LOCKSTEP_BIN, "inspect", "--verify", a});
    const Measured i = Run({LOCKSTEP_BIN, "inspect", a});
    if (d.code != 1 || v.code == 2 || v.code < 0 || i.code == 2 || i.code < 0) {
      return state.SkipWithError(d.code != 1 ? "lockstep diff did not say DIFFERENT" : "lockstep inspect failed");
    }
    diff.seconds += d.seconds, verify.seconds += v.seconds, inspect.seconds += i.seconds;
    diff.peak_mib = std::max(diff.peak_mib, d.peak_mib);
    verify.peak_mib = std::max(verify.peak_mib, v.peak_mib);
    inspect.peak_mib = std::max(inspect.peak_mib, i.peak_mib);
  }
  state.counters["diff_vs_read"] = read2 / diff.seconds;
  state.counters["diff_peak_rss_mib"] = diff.peak_mib;
  state.counters["verify_vs_read"] = read1 / verify.seconds;
  state.counters["verify_peak_rss_mib"] = verify.peak_mib;
  state.counters["inspect_vs_read"] = read1 / inspect.seconds;
  state.counters["inspect_peak_rss_mib"] = inspect.peak_mib;
  const double n = static_cast<double>(state.iterations());
  state.counters["diff_s"] = diff.seconds / n;  // the docs' table: seconds a command takes
  state.counters["verify_s"] = verify.seconds / n;
  state.counters["inspect_s"] = inspect.seconds / n;
  state.counters["read_GBps"] = 2.0 * static_cast<double>(mib << 20) * state.iterations() / 1e9 / read2;
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  for (const auto& size : lockstep::ListFrom("LOCKSTEP_BENCH_SCALE_MIB", "256,1024")) {
    const uint64_t mib = std::strtoull(size.c_str(), nullptr, 10);
    for (const auto& layout : lockstep::kLayouts) {
      if (!lockstep::Wanted(layout.name)) continue;
      benchmark::RegisterBenchmark(("BM_Scale/" + std::string(layout.name) + "/mib:" + std::to_string(mib)).c_str(),
                                   lockstep::BM_Scale, layout, mib)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(1);
    }
  }
  return lockstep::bench::RunBenchmarks(argc, argv);
}
