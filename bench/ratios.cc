#include "bench/ratios.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "formats/json_file.h"

namespace lockstep {
namespace {

using json = nlohmann::json;

std::optional<double> Median(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The median time of the first benchmark whose name starts with `prefix`.
std::optional<double> Time(const BenchSamples& r, const std::string& prefix) {
  for (const auto& [name, times] : r.times_ns) {
    if (name.rfind(prefix, 0) == 0) return Median(times);
  }
  return std::nullopt;
}

std::optional<double> Counter(const BenchSamples& r, const std::string& prefix, const std::string& counter) {
  for (const auto& [name, counters] : r.counters) {
    if (name.rfind(prefix, 0) != 0) continue;
    const auto it = counters.find(counter);
    if (it != counters.end()) return Median(it->second);
  }
  return std::nullopt;
}

std::optional<double> Divide(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

struct RatioSpec {
  std::string name, meaning, target;
  std::function<std::optional<double>(const BenchSamples&)> compute;
};

// Yardstick time over Lockstep's: above 1, Lockstep is faster.
RatioSpec Speedup(std::string name, std::string meaning, std::string target, std::string ours, std::string theirs) {
  return {name, meaning, target,
          [ours, theirs](const BenchSamples& r) { return Divide(Time(r, theirs), Time(r, ours)); }};
}

const std::vector<RatioSpec>& Specs() {
  static const std::vector<RatioSpec> specs = [] {
    std::vector<RatioSpec> s;
    const char* sizes[][2] = {{"mlp", "0"}, {"gpt_tiny", "1"}, {"gpt_mid", "2"}, {"gpt_4x256", "3"}};
    for (const auto& [size, arg] : sizes) {
      const std::string suffix = std::string("/size:") + arg + "/";
      s.push_back(Speedup(std::string("train_") + size + "_vs_python",
                          "training steps/s, Lockstep over the Python PyTorch loop", "", "BM_Train" + suffix,
                          "BM_PythonTrain" + suffix));
      s.push_back(Speedup(std::string("train_") + size + "_vs_torch_compile",
                          "training steps/s, Lockstep over the Python loop with its loss under torch.compile", "",
                          "BM_Train" + suffix, "BM_PythonTrainCompiled" + suffix));
      s.push_back({std::string("recording_share_") + size,
                   "share of the loop's time spent building and queueing step records", "<= 0.01",
                   [suffix](const BenchSamples& r) { return Counter(r, "BM_Train" + suffix, "record_share"); }});
      s.push_back({std::string("recording_ab_") + size,
                   "step time with the step log over without it, minus 1 (end to end; noisy)", "<= 0.01",
                   [suffix](const BenchSamples& r) {
                     const auto q = Divide(Time(r, "BM_Train" + suffix), Time(r, "BM_TrainNoLog" + suffix));
                     return q ? std::optional<double>(*q - 1) : std::nullopt;
                   }});
      s.push_back({std::string("python_recorder_ab_") + size,
                   "the Python loop's step time with lockstep.Recorder over without it, minus 1", "",
                   [suffix](const BenchSamples& r) {
                     const auto q =
                         Divide(Time(r, "BM_PythonTrainRecorded" + suffix), Time(r, "BM_PythonTrain" + suffix));
                     return q ? std::optional<double>(*q - 1) : std::nullopt;
                   }});
      s.push_back({std::string("python_hf_callback_ab_") + size,
                   "the Python loop's step time with lockstep.hf.LockstepCallback over without it, minus 1", "",
                   [suffix](const BenchSamples& r) {
                     const auto q =
                         Divide(Time(r, "BM_PythonTrainHfCallback" + suffix), Time(r, "BM_PythonTrain" + suffix));
                     return q ? std::optional<double>(*q - 1) : std::nullopt;
                   }});
      s.push_back({std::string("gflops_vs_sgemm_peak_") + size,
                   "achieved training GFLOP/s over the machine's sgemm GFLOP/s", "", [suffix](const BenchSamples& r) {
                     return Divide(Counter(r, "BM_Train" + suffix, "GFLOP/s"), Counter(r, "BM_SgemmPeak", "GFLOP/s"));
                   }});
    }
    for (const char* layers : {"2", "10"}) {
      const std::string arg = std::string("/layers:") + layers + "/", n = layers;
      s.push_back(Speedup("save_vs_raw_write_" + n, "checkpoint save over write+fsync of the same bytes", ">= 0.8",
                          "BM_Save" + arg, "BM_RawWrite" + arg));
      s.push_back(Speedup("save_vs_torch_save_" + n, "checkpoint save over torch.save+fsync", ">= 1.5", "BM_Save" + arg,
                          "BM_TorchSave" + arg));
      s.push_back(Speedup("load_vs_raw_read_" + n, "resume load (checksums verified) over read(2) of the same files",
                          ">= 0.8", "BM_Load" + arg, "BM_RawRead" + arg));
      s.push_back(Speedup("load_vs_torch_load_" + n, "resume load over torch.load", ">= 1.5", "BM_Load" + arg,
                          "BM_TorchLoad" + arg));
    }
    s.push_back({"save_async_stall_vs_sync", "training stall per checkpoint, --save_async over a synchronous save", "",
                 [](const BenchSamples& r) {
                   return Divide(Counter(r, "BM_TrainSaving/async:1", "stall_per_save_ms"),
                                 Counter(r, "BM_TrainSaving/async:0", "stall_per_save_ms"));
                 }});
    s.push_back({"save_async_stall_share", "share of the loop's time held up by --save_async saves (every 2nd step)",
                 "<= 0.035",
                 [](const BenchSamples& r) { return Counter(r, "BM_TrainSaving/async:1", "stall_share"); }});
    s.push_back({"data_parallel_2_vs_1", "samples/s of a 2-rank job (Gloo) over one process, gpt_mid (ideal: 2)", "",
                 [](const BenchSamples& r) {
                   return Divide(Counter(r, "BM_DataParallel/ranks:2/invariant_unit:0", "items_per_second"),
                                 Counter(r, "BM_DataParallel/ranks:1/invariant_unit:0", "items_per_second"));
                 }});
    for (const char* unit : {"1", "4", "16"}) {
      s.push_back({std::string("world_invariant_unit") + unit + "_vs_all_reduce",
                   std::string("samples/s of a 2-rank --world_invariant job (units of ") + unit +
                       ") over the ordinary all-reduce, gpt_mid",
                   "", [unit](const BenchSamples& r) {
                     return Divide(
                         Counter(r, std::string("BM_DataParallel/ranks:2/invariant_unit:") + unit, "items_per_second"),
                         Counter(r, "BM_DataParallel/ranks:2/invariant_unit:0", "items_per_second"));
                   }});
    }
    // scale_bench: each layout at the largest size measured (BM_Scale/<layout>/mib:<N>).
    for (const char* layout : {"safetensors", "dcp", "pt", "h5"}) {
      const std::string prefix = std::string("BM_Scale/") + layout + "/mib:", l = layout;
      const auto largest = [prefix](const BenchSamples& r, const std::string& counter) {
        std::optional<double> value;
        uint64_t best = 0;
        for (const auto& [name, counters] : r.counters) {
          if (name.rfind(prefix, 0) != 0) continue;
          const uint64_t mib = std::strtoull(name.c_str() + prefix.size(), nullptr, 10);
          if (mib >= best && counters.count(counter)) best = mib, value = Median(counters.at(counter));
        }
        return value;
      };
      s.push_back({"diff_" + l + "_vs_read",
                   "lockstep diff of two checkpoints (the largest size run): read(2)'s time of their bytes over diff's",
                   "", [largest](const BenchSamples& r) { return largest(r, "diff_vs_read"); }});
      s.push_back({"diff_" + l + "_peak_rss_mib", "lockstep diff's peak RSS, MiB, at that size", "<= 64",
                   [largest](const BenchSamples& r) { return largest(r, "diff_peak_rss_mib"); }});
      s.push_back({"verify_" + l + "_vs_read", "lockstep inspect --verify of one checkpoint: read(2)'s time over its",
                   "", [largest](const BenchSamples& r) { return largest(r, "verify_vs_read"); }});
      s.push_back({"inspect_" + l + "_peak_rss_mib", "lockstep inspect's peak RSS (every tensor's stats), MiB", "<= 64",
                   [largest](const BenchSamples& r) { return largest(r, "inspect_peak_rss_mib"); }});
    }
    s.push_back({"resume_late_vs_early", "resume latency at update 4998 over update 2 of an epoch", "<= 1.5",
                 [](const BenchSamples& r) { return Divide(Time(r, "BM_Resume/4998"), Time(r, "BM_Resume/2")); }});
    s.push_back(Speedup("tensor_stats_f32_vs_hash", "inspect's tensor stats (float32) over XXH3 of the same bytes", "",
                        "BM_TensorStats/float32", "BM_TensorHash"));
    s.push_back(
        {"tensor_stats_f32_gb_per_s", "inspect's tensor stats on float32, GB/s", ">= 1", [](const BenchSamples& r) {
           const auto b = Counter(r, "BM_TensorStats/float32", "bytes_per_second");
           return b ? std::optional<double>(*b / 1e9) : std::nullopt;
         }});
    s.push_back(
        {"tensor_stats_bf16_gb_per_s", "inspect's tensor stats on bfloat16, GB/s", ">= 1", [](const BenchSamples& r) {
           const auto b = Counter(r, "BM_TensorStats/bfloat16", "bytes_per_second");
           return b ? std::optional<double>(*b / 1e9) : std::nullopt;
         }});
    s.push_back({"verify_resume_vs_children_training",
                 "verify-resume's wall time over its children's training loops (their runtime_s)", "<= 1.5",
                 [](const BenchSamples& r) {
                   const auto s = Counter(r, "BM_VerifyResumeProcess", "children_training_s");
                   return Divide(Time(r, "BM_VerifyResumeProcess"), s ? std::optional<double>(*s * 1e9) : std::nullopt);
                 }});
    s.push_back(
        {"verify_resume_vs_train", "verify-resume's wall time over one `lockstep train` of the same run", "",
         [](const BenchSamples& r) { return Divide(Time(r, "BM_VerifyResumeProcess"), Time(r, "BM_TrainProcess")); }});
    return s;
  }();
  return specs;
}

std::string Format(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), std::fabs(v) < 0.1 ? "%.4f" : "%.3f", v);
  return buf;
}

}  // namespace

std::vector<RatioValue> ComputeRatios(const BenchSamples& results) {
  std::vector<RatioValue> out;
  for (const auto& spec : Specs()) out.push_back({spec.name, spec.meaning, spec.target, spec.compute(results)});
  return out;
}

bool FloorReport::crossed() const {
  return std::any_of(checked.begin(), checked.end(), [](const FloorVerdict& v) { return v.crossed; });
}

Status CheckFloors(const std::string& path, const std::vector<RatioValue>& ratios, FloorReport* report) {
  *report = FloorReport();
  json floors;
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(path, &floors));
  if (!floors.is_object()) return Status::Corruption(path + ": floors must be a JSON object of ratio names");
  for (const auto& [name, floor] : floors.items()) {
    if (name.rfind("_", 0) == 0) continue;  // "_comment"
    const auto known = std::find_if(ratios.begin(), ratios.end(), [&](const RatioValue& r) { return r.name == name; });
    if (known == ratios.end())
      return Status::Corruption(path + ": '" + name + "' is not a ratio lockstep bench reports");
    FloorVerdict v;
    v.name = name;
    if (floor.is_object() && floor.contains("min") && floor["min"].is_number()) v.min = floor["min"].get<double>();
    if (floor.is_object() && floor.contains("max") && floor["max"].is_number()) v.max = floor["max"].get<double>();
    if (!v.min && !v.max) return Status::Corruption(path + ": '" + name + "' needs a numeric \"min\" or \"max\"");
    if (!known->value) {
      report->missing.push_back(name);
      continue;
    }
    v.value = *known->value;
    v.crossed = (v.min && v.value < *v.min) || (v.max && v.value > *v.max);
    report->checked.push_back(v);
  }
  return Status::Ok();
}

std::string RatiosText(const std::vector<RatioValue>& ratios) {
  std::string out = "ratio                             value    target   meaning\n";
  for (const auto& r : ratios) {
    if (!r.value) continue;
    char line[256];
    std::snprintf(line, sizeof(line), "%-33s %-8s %-8s %s\n", r.name.c_str(), Format(*r.value).c_str(),
                  r.target.c_str(), r.meaning.c_str());
    out += line;
  }
  return out;
}

std::string FloorReportText(const FloorReport& report) {
  std::string out;
  for (const auto& v : report.checked) {
    out += (v.crossed ? "FLOOR CROSSED  " : "ok             ") + v.name + " = " + Format(v.value) +
           (v.min ? " (min " + Format(*v.min) + ")" : "") + (v.max ? " (max " + Format(*v.max) + ")" : "") + "\n";
  }
  for (const auto& name : report.missing) out += "not measured   " + name + " (its benchmarks did not run)\n";
  out += report.crossed() ? "floors: CROSSED\n" : "floors: all held\n";
  return out;
}

json RatiosJson(const std::vector<RatioValue>& ratios) {
  json out = json::array();
  for (const auto& r : ratios) {
    if (r.value) out.push_back({{"name", r.name}, {"value", *r.value}, {"target", r.target}, {"meaning", r.meaning}});
  }
  return out;
}

json FloorReportJson(const FloorReport& report) {
  json checked = json::array();
  for (const auto& v : report.checked) {
    json j = {{"name", v.name}, {"value", v.value}, {"crossed", v.crossed}};
    if (v.min) j["min"] = *v.min;
    if (v.max) j["max"] = *v.max;
    checked.push_back(j);
  }
  return {{"checked", checked}, {"missing", report.missing}, {"crossed", report.crossed()}};
}

}  // namespace lockstep
