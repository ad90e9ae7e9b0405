#include "bench/runner.h"

#include <stdlib.h>
#include <unistd.h>

#include <limits.h>

#include <algorithm>
#include <filesystem>

#include "bench/interleave.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "process/job_env.h"

namespace lockstep {
namespace {

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// The suites' directory for a `lockstep` in `exe_dir`: the build tree's bench/ beside it,
// else that directory itself; "" when neither holds them.
std::string SuitesIn(const std::string& exe_dir) {
  for (const std::string& dir : {exe_dir + "/../bench", exe_dir}) {
    if (IsExecutable(dir + "/" + BenchSuites().front().binary)) return dir;
  }
  return "";
}

Status RunSuite(const BenchSuite& suite, const BenchRunOptions& o, const std::string& out, nlohmann::json* doc) {
  const std::string binary = o.bench_dir + "/" + suite.binary;
  if (!IsExecutable(binary)) return Status::NotFound(binary + ": not built (configure with -DLOCKSTEP_BUILD_BENCH=ON)");
  // At least as many repetitions as the gate needs to be able to fire (bench/gate.h).
  const int fewest = RepetitionsToReach(GateOptions().alpha);
  int reps = o.repetitions > 0 ? o.repetitions : (o.quick ? fewest : 10);
  reps = std::min(reps, std::max(suite.max_repetitions, fewest));  // heavy suites: no more than needed
  std::vector<std::string> argv = {binary, "--benchmark_out=" + out, "--benchmark_out_format=json",
                                   "--benchmark_repetitions=" + std::to_string(reps),
                                   "--benchmark_enable_random_interleaving=true"};
  if (o.quick) argv.push_back(std::string("--benchmark_filter=") + suite.quick_filter);
  const int code = RunQuietly(argv);
  if (code != 0) {
    return Status::IOError(
        binary + (code < 0 ? ": could not run, or was killed" : ": failed with exit code " + std::to_string(code)) +
        " (run it alone to see why)");
  }
  return ReadGoogleBenchmarkFile(out, doc);
}

}  // namespace

const std::vector<BenchSuite>& BenchSuites() {
  static const std::vector<BenchSuite> suites = {
      {"train_bench", "size:[012]/|BM_SgemmPeak|BM_TrainSaving|BM_DataParallel",
       "training steps/s against the Python peer; recording cost; GFLOP/s; the stall of saves; 1 vs 2 ranks", 1000},
      {"checkpoint_bench", "layers:2/", "checkpoint save and load against raw I/O and torch.save/torch.load", 1000},
      {"resume_latency_bench", "BM_Resume", "resume latency early and late in an epoch", 1000},
      {"inspect_bench", "BM_TensorStats|BM_TensorHash|BM_TrainHelp|BM_LockstepStart", "inspect, start-up, --help",
       1000},
      {"instr_bench", ".",
       "instructions (callgrind) of recording, the step log, a small save and load, inspect, diff, the gate", 1},
      {"step_log_resume_bench", nullptr, "step-log appends and continuing a log", 5},
      {"diff_bench", nullptr, "lockstep diff against h5diff", 5},
      {"scale_bench", nullptr, "diff and inspect of 0.25 and 1 GiB checkpoints of each layout against read(2)", 5},
      {"replay_bench", nullptr, "replay against training", 5},
  };
  return suites;
}

std::string FindBenchDir() {
  if (const char* env = std::getenv("LOCKSTEP_BENCH_DIR"); env != nullptr && *env != '\0') return env;
  return SuitesIn(ExecutableDirectory());
}

std::string BenchDirBeside(const std::string& lockstep) {
  std::string path = lockstep;
  if (path.find('/') == std::string::npos) {  // a command name: where PATH finds it
    const char* env = std::getenv("PATH");
    std::string dirs = env ? env : "";
    path.clear();
    for (size_t start = 0; start <= dirs.size();) {
      const size_t end = std::min(dirs.find(':', start), dirs.size());
      const std::string candidate = dirs.substr(start, end - start) + "/" + lockstep;
      if (end > start && IsExecutable(candidate)) {
        path = candidate;
        break;
      }
      start = end + 1;
    }
  }
  char resolved[PATH_MAX];
  if (path.empty() || ::realpath(path.c_str(), resolved) == nullptr) return "";
  return SuitesIn(std::filesystem::path(resolved).parent_path().string());
}

Status RunSuitesInterleaved(const AbRunOptions& o, BenchSamples* base, BenchSamples* candidate) {
  PreferSleepingOpenMpThreads();  // the suites train in process, as `lockstep train` does
  *base = BenchSamples();
  *candidate = BenchSamples();
  int shared = 0;
  for (const BenchSuite& suite : BenchSuites()) {
    if (o.quick && suite.quick_filter == nullptr) continue;
    std::vector<std::string> wanted;
    for (const auto& [name, in_suite] : o.only)
      if (in_suite == suite.binary) wanted.push_back(name);
    if (!o.only.empty() && wanted.empty()) continue;
    const std::string a = o.baseline_dir + "/" + suite.binary, b = o.candidate_dir + "/" + suite.binary;
    if (!IsExecutable(a) || !IsExecutable(b)) {
      if (o.progress) o.progress(std::string("lockstep bench ab: ") + suite.binary + ": skipped, not in both builds");
      continue;
    }
    if (o.progress) o.progress(std::string("lockstep bench ab: ") + suite.binary + ": " + suite.measures);
    InterleaveOptions ab{a, b, o.rounds, o.args};
    if (o.quick) ab.args.push_back(std::string("--benchmark_filter=") + suite.quick_filter);
    if (!wanted.empty()) ab.args.push_back("--benchmark_filter=" + FilterForNames(wanted));  // the last one counts
    BenchSamples suite_base, suite_candidate;
    LOCKSTEP_RETURN_IF_ERROR(RunInterleaved(ab, &suite_base, &suite_candidate));
    for (const auto& [into, from] : {std::make_pair(base, &suite_base), std::make_pair(candidate, &suite_candidate)}) {
      into->times_ns.insert(from->times_ns.begin(), from->times_ns.end());
      into->counters.insert(from->counters.begin(), from->counters.end());
      for (const auto& [name, unused] : from->times_ns) into->suite_of[name] = suite.binary;
    }
    ++shared;
  }
  if (shared == 0) {
    return Status::NotFound("no benchmark suite is built in both " + o.baseline_dir + " and " + o.candidate_dir);
  }
  return Status::Ok();
}

Status RunBenchSuites(const BenchRunOptions& o, nlohmann::json* merged) {
  PreferSleepingOpenMpThreads();  // the suites train in process, as `lockstep train` does
  if (o.bench_dir.empty()) {
    return Status::NotFound(
        "no benchmark suites found beside lockstep (build with -DLOCKSTEP_BUILD_BENCH=ON, or set "
        "LOCKSTEP_BENCH_DIR)");
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string scratch = std::string(tmp && *tmp ? tmp : "/tmp") + "/lockstep-bench-XXXXXX";
  if (::mkdtemp(scratch.data()) == nullptr) return Status::IOError(scratch + ": cannot create a scratch directory");
  *merged = {{"benchmarks", nlohmann::json::array()}};
  nlohmann::json suites_run = nlohmann::json::array();
  Status st;
  for (const BenchSuite& suite : BenchSuites()) {
    if (o.quick && suite.quick_filter == nullptr) continue;
    if (o.progress) o.progress(std::string("lockstep bench: ") + suite.binary + ": " + suite.measures);
    nlohmann::json doc;
    st = RunSuite(suite, o, scratch + "/" + suite.binary + ".json", &doc);
    if (!st.ok()) break;
    if (!merged->contains("context") && doc.contains("context")) (*merged)["context"] = doc["context"];
    for (auto& b : doc.value("benchmarks", nlohmann::json::array())) {
      b["lockstep_suite"] = suite.binary;
      (*merged)["benchmarks"].push_back(std::move(b));
    }
    suites_run.push_back(suite.binary);
  }
  RemoveTree(scratch);
  (*merged)["context"]["lockstep_bench"] = {{"quick", o.quick}, {"suites", suites_run}};
  return st;
}

}  // namespace lockstep
