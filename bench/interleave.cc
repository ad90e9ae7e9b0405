#include "bench/interleave.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "formats/file_util.h"
#include "process/spawn.h"

namespace lockstep {
namespace {

Status RunOnce(const std::string& binary, const InterleaveOptions& o, const std::string& out, BenchSamples* into) {
  std::vector<std::string> argv = {binary, "--benchmark_out=" + out, "--benchmark_out_format=json"};
  argv.insert(argv.end(), o.args.begin(), o.args.end());
  const int code = RunQuietly(argv);
  if (code < 0) return Status::NotFound(binary + ": cannot run it (not an executable, or killed)");
  if (code != 0) return Status::IOError(binary + ": the benchmark failed with exit code " + std::to_string(code));
  BenchSamples one;
  LOCKSTEP_RETURN_IF_ERROR(ReadBenchmarkJson(out, &one));
  for (auto& [name, times] : one.times_ns)
    into->times_ns[name].insert(into->times_ns[name].end(), times.begin(), times.end());
  for (auto& [name, counters] : one.counters) {
    for (auto& [counter, values] : counters) {
      auto& all = into->counters[name][counter];
      all.insert(all.end(), values.begin(), values.end());
    }
  }
  return Status::Ok();
}

}  // namespace

int RunQuietly(const std::vector<std::string>& argv) {
  SpawnOptions quiet;
  quiet.Open(STDOUT_FILENO, "/dev/null", O_WRONLY).Dup(STDERR_FILENO, STDOUT_FILENO);
  quiet.search_path = true;
  return SpawnAndWait(argv, quiet);
}

Status RunInterleaved(const InterleaveOptions& o, BenchSamples* base, BenchSamples* candidate) {
  *base = BenchSamples();
  *candidate = BenchSamples();
  if (o.rounds < 2) return Status::InvalidArgument("--rounds must be at least 2");
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/lockstep-bench-ab-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return Status::IOError(dir + ": cannot create a scratch directory");
  Status st;
  for (int r = 0; r < o.rounds && st.ok(); ++r) {
    st = RunOnce(o.baseline, o, dir + "/a.json", base);
    if (st.ok()) st = RunOnce(o.candidate, o, dir + "/b.json", candidate);
  }
  RemoveTree(dir);
  return st;
}

}  // namespace lockstep
