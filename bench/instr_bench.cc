// instr_bench: instructions, not seconds, for the CPU-bound paths small enough to run under
// valgrind's callgrind (CodSpeed's method): recording steps, reading the step log, saving
// and loading a small tensor file, inspect's step-log view, lockstep diff of two runs, and
// the bench gate itself. A CI machine without hardware counters still counts instructions
// repeatably, so the gate can hold them to a tight threshold (bench/gate.h).
//
// It speaks Google Benchmark's command line and JSON, so `lockstep bench` runs it as a
// suite and `lockstep bench ab` runs two builds of it: each workload runs once in a child
// under callgrind, counting only the workload (set-up and teardown are not collected), and
// becomes an entry INSTR_<name> with the counter "instructions". No LibTorch here.
#include <fcntl.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include "bench/gate.h"
#include "diff/run_divergence.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/step_log.h"
#include "formats/step_record.h"
#include "formats/tensor_file.h"
#include "inspect/step_log_view.h"
#include "process/spawn.h"

namespace lockstep {
namespace {

using nlohmann::json;

// Each workload's work: `scale` (1 normally) multiplies its size, so a test can change its
// instruction count on purpose (--instr_scale).
struct Workload {
  const char* name;
  // Prepares what the measured part reads, in `dir` (not counted).
  std::function<Status(const std::string& dir, double scale)> setup;
  std::function<Status(const std::string& dir, double scale)> run;  // counted
};

std::string TempDirectory() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

int Scaled(int n, double scale) { return static_cast<int>(n * scale + 0.5); }

Status WriteSteps(const std::string& run_dir, int steps, float loss_change_at) {
  LOCKSTEP_RETURN_IF_ERROR(MakeDirs(run_dir));
  std::unique_ptr<StepLogWriter> log;
  LOCKSTEP_RETURN_IF_ERROR(StepLogWriter::Create(run_dir + "/" + kStepLogFile, {{"run", "instr_bench"}}, {}, &log));
  std::vector<uint8_t> state(5056);
  for (int s = 1; s <= steps; ++s) {
    StepRecord r;
    r.step = s;
    r.batches = {{8 * s, 8 * s + 1, 8 * s + 2, 8 * s + 3, 8 * s + 4, 8 * s + 5, 8 * s + 6, 8 * s + 7}};
    r.loss = 2.0f / static_cast<float>(s) + (s >= loss_change_at ? 1e-3f : 0.0f);
    r.lr = 1e-3 * (1.0 - s / 1e4);
    r.grad_norm = 0.5f;
    r.epoch = s / 100.0;
    state[s % state.size()] = static_cast<uint8_t>(s);  // a generator state that moves
    r.rng = {{step_key::kCpu, GeneratorStateOf(state, /*full=*/false)}};
    LOCKSTEP_RETURN_IF_ERROR(log->Append(std::move(r)));
  }
  return log->Close();
}

std::vector<TensorData> SmallModel(double scale) {
  std::vector<TensorData> tensors;
  for (int i = 0; i < Scaled(8, scale); ++i) {
    TensorData t;
    t.name = "layers." + std::to_string(i) + ".weight";
    t.shape = {64, 64};
    t.bytes.resize(64 * 64 * sizeof(float));
    for (size_t b = 0; b < t.bytes.size(); ++b) t.bytes[b] = static_cast<uint8_t>(b * 7 + i);
    tensors.push_back(std::move(t));
  }
  return tensors;
}

const std::vector<Workload>& Workloads() {
  static const std::vector<Workload> all = {
      {"record_steps", nullptr,
       [](const std::string& dir, double scale) { return WriteSteps(dir + "/run", Scaled(256, scale), 1e9f); }},
      {"read_step_log", [](const std::string& dir, double) { return WriteSteps(dir + "/run", 256, 1e9f); },
       [](const std::string& dir, double scale) {
         StepLogContents log;
         for (int i = 0; i < Scaled(4, scale); ++i)
           LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(dir + "/run/" + kStepLogFile, &log));
         return Status::Ok();
       }},
      {"inspect_step_log", [](const std::string& dir, double) { return WriteSteps(dir + "/run", 256, 1e9f); },
       [](const std::string& dir, double scale) {
         json report;
         for (int i = 0; i < Scaled(4, scale); ++i)
           LOCKSTEP_RETURN_IF_ERROR(ViewStepLog(dir + "/run/" + kStepLogFile, StepLogViewOptions(), &report));
         return Status::Ok();
       }},
      {"save_small", nullptr,
       [](const std::string& dir, double scale) { return WriteTensorFile(dir + "/model.h5", SmallModel(scale)); }},
      {"load_small",
       [](const std::string& dir, double scale) { return WriteTensorFile(dir + "/model.h5", SmallModel(scale)); },
       [](const std::string& dir, double) {
         std::vector<TensorData> tensors;
         return ReadTensorFile(dir + "/model.h5", &tensors);
       }},
      {"diff_runs",
       [](const std::string& dir, double scale) {
         LOCKSTEP_RETURN_IF_ERROR(WriteSteps(dir + "/a", Scaled(256, scale), 1e9f));
         return WriteSteps(dir + "/b", Scaled(256, scale), 200.0f);
       },
       [](const std::string& dir, double) {
         RunDiff d;
         return DiffRuns(dir + "/a", dir + "/b", Tolerance(), &d);
       }},
      {"bench_gate", nullptr,
       [](const std::string&, double scale) {
         BenchSamples a, b;
         for (int i = 0; i < Scaled(50, scale); ++i) {
           for (int r = 0; r < 10; ++r) {
             a.times_ns["BM_" + std::to_string(i)].push_back(1000 + (r * 37 + i) % 101);
             b.times_ns["BM_" + std::to_string(i)].push_back(1010 + (r * 53 + i) % 103);
           }
         }
         GateReport report;
         LOCKSTEP_RETURN_IF_ERROR(CompareBenchmarks(a, b, GateOptions(), &report));
         return GateReportText(report).empty() ? Status::Internal("empty report") : Status::Ok();
       }},
  };
  return all;
}

// The child: set up, count the workload alone, tear down.
int RunChild(const std::string& name, double scale) {
  for (const Workload& w : Workloads()) {
    if (name != w.name) continue;
    std::string dir = TempDirectory() + "/lockstep-instr-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) return 3;
    Status st = w.setup ? w.setup(dir, scale) : Status::Ok();
    if (st.ok()) {
      CALLGRIND_TOGGLE_COLLECT;
      st = w.run(dir, scale);
      CALLGRIND_TOGGLE_COLLECT;
    }
    RemoveTree(dir);
    if (!st.ok()) std::fprintf(stderr, "instr_bench: %s: %s\n", name.c_str(), st.ToString().c_str());
    return st.ok() ? 0 : 1;
  }
  std::fprintf(stderr, "instr_bench: no workload %s\n", name.c_str());
  return 2;
}

// The instructions callgrind counted, from its output file's "totals:" (or "summary:") line.
bool ReadTotal(const std::string& path, double* instructions) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    for (const char* key : {"totals: ", "summary: "}) {
      if (line.rfind(key, 0) == 0) {
        *instructions = std::strtod(line.c_str() + std::strlen(key), nullptr);
        return true;
      }
    }
  }
  return false;
}

int RunParent(const std::string& self, const std::string& out, const std::string& filter, double scale) {
  const std::regex selected(filter.empty() ? "." : filter, std::regex::extended);
  std::string dir = TempDirectory() + "/lockstep-instr-out-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return 3;
  json benchmarks = json::array();
  int code = 0;
  for (const Workload& w : Workloads()) {
    const std::string name = std::string("INSTR_") + w.name;
    if (!std::regex_search(name, selected)) continue;
    const std::string cg = dir + "/" + w.name + ".callgrind";
    const std::vector<std::string> argv = {"valgrind",
                                           "--tool=callgrind",
                                           "--collect-atstart=no",
                                           "--callgrind-out-file=" + cg,
                                           self,
                                           std::string("--instr_workload=") + w.name,
                                           "--instr_scale=" + std::to_string(scale)};
    SpawnOptions quiet;
    quiet.Open(STDOUT_FILENO, "/dev/null", O_WRONLY).Dup(STDERR_FILENO, STDOUT_FILENO);
    quiet.search_path = true;
    const auto start = std::chrono::steady_clock::now();
    const int status = SpawnAndWait(argv, quiet);
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    double instructions = 0;
    if (status != 0 || !ReadTotal(cg, &instructions) || instructions <= 0) {
      std::fprintf(stderr,
                   "instr_bench: %s: callgrind gave no count (exit %d; is valgrind installed? "
                   "scripts/install-deps.sh installs it)\n",
                   name.c_str(), status);
      code = 1;
      break;
    }
    benchmarks.push_back({{"name", name},
                          {"run_name", name},
                          {"run_type", "iteration"},
                          {"repetitions", 1},
                          {"repetition_index", 0},
                          {"iterations", 1},
                          {"real_time", ns},
                          {"cpu_time", ns},
                          {"time_unit", "ns"},
                          {kInstructionsCounter, instructions}});
  }
  RemoveTree(dir);
  if (code != 0) return code;
  const json doc = {{"context", {{"executable", self}, {"measure", "instructions (valgrind --tool=callgrind)"}}},
                    {"benchmarks", benchmarks}};
  if (!out.empty()) {
    const Status st = WriteJsonFile(out, doc);
    if (!st.ok()) {
      std::fprintf(stderr, "instr_bench: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  std::printf("%s\n", DumpJson(doc, 2).c_str());
  return 0;
}

}  // namespace
}  // namespace lockstep

int main(int argc, char** argv) {
  std::string out, filter, workload;
  double scale = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) { return a.rfind(flag, 0) == 0 ? a.substr(std::strlen(flag)) : std::string(); };
    if (a.rfind("--benchmark_out=", 0) == 0) {
      out = value("--benchmark_out=");
    } else if (a.rfind("--benchmark_filter=", 0) == 0) {
      filter = value("--benchmark_filter=");
    } else if (a.rfind("--instr_workload=", 0) == 0) {
      workload = value("--instr_workload=");
    } else if (a.rfind("--instr_scale=", 0) == 0) {
      scale = std::strtod(value("--instr_scale=").c_str(), nullptr);
    } else if (a.rfind("--benchmark_", 0) != 0) {  // other gbench flags (repetitions, format) do not apply
      std::fprintf(stderr, "instr_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (!(scale > 0 && scale < 100)) {
    std::fprintf(stderr, "instr_bench: --instr_scale must be a positive factor\n");
    return 2;
  }
  if (!workload.empty()) return lockstep::RunChild(workload, scale);
  return lockstep::RunParent(lockstep::ExecutableDirectory() + "/instr_bench", out, filter, scale);
}
