#include "bench/gate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "formats/file_util.h"
#include "formats/json_file.h"

using nlohmann::json;

namespace lockstep {
namespace {

constexpr size_t kExactMax = 30;  // exact U distribution up to 30 x 30 samples

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double UnitToNs(const std::string& unit, bool* ok) {
  *ok = true;
  if (unit == "ns") return 1;
  if (unit == "us") return 1e3;
  if (unit == "ms") return 1e6;
  if (unit == "s") return 1e9;
  *ok = false;
  return 0;
}

// P(U >= u) for U of sizes m (candidate) and n (base) under H0, no ties: counts of
// arrangements by the recurrence c(m, n, u) = c(m-1, n, u-n) + c(m, n-1, u).
double ExactUpperTail(size_t m, size_t n, double u_observed) {
  const size_t max_u = m * n;
  std::vector<std::vector<std::vector<double>>> c(m + 1, std::vector<std::vector<double>>(n + 1));
  for (size_t i = 0; i <= m; ++i) {
    for (size_t j = 0; j <= n; ++j) {
      c[i][j].assign(i * j + 1, 0.0);
      if (i == 0 || j == 0) {
        c[i][j][0] = 1;
        continue;
      }
      for (size_t u = 0; u <= i * j; ++u) {
        c[i][j][u] = (u >= j ? c[i - 1][j][u - j] : 0.0) + (u <= i * (j - 1) ? c[i][j - 1][u] : 0.0);
      }
    }
  }
  double total = 0, tail = 0;
  for (size_t u = 0; u <= max_u; ++u) {
    total += c[m][n][u];
    if (static_cast<double>(u) >= u_observed - 1e-9) tail += c[m][n][u];
  }
  return tail / total;
}

// Google Benchmark's own fields of an entry; every other number is a counter
// (items_per_second, bytes_per_second, user counters).
bool IsStandardField(const std::string& key) {
  static const char* const kStandard[] = {"family_index", "per_family_instance_index",
                                          "repetitions",  "repetition_index",
                                          "threads",      "iterations",
                                          "real_time",    "cpu_time"};
  for (const char* k : kStandard) {
    if (key == k) return true;
  }
  return false;
}

}  // namespace

Status ReadGoogleBenchmarkFile(const std::string& path, json* doc) {
  std::string text;
  LOCKSTEP_RETURN_IF_ERROR(ReadFileToString(path, &text, JsonLimits().max_bytes));
  for (const char* bare : {"-NaN", "NaN", "-nan", "nan", "-Infinity", "Infinity", "-inf", "inf"}) {
    const std::string value = std::string(": ") + bare;
    for (size_t at = 0; (at = text.find(value, at)) != std::string::npos;) {
      const size_t end = at + value.size();
      if (end < text.size() && text[end] != ',' && text[end] != '\n' && text[end] != '}') {
        at = end;  // a longer token, or inside a string
        continue;
      }
      text.replace(at, value.size(), ": null");
    }
  }
  return ParseJson(text, path, doc, JsonLimits());
}

Status ReadBenchmarkJson(const std::string& path, BenchSamples* out) {
  json doc;
  LOCKSTEP_RETURN_IF_ERROR(ReadGoogleBenchmarkFile(path, &doc));
  return BenchSamplesFromJson(doc, path, out);
}

Status BenchSamplesFromJson(const json& doc, const std::string& path, BenchSamples* out) {
  *out = BenchSamples();
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array()) {
    return Status::Corruption(path + ": not Google Benchmark JSON (no \"benchmarks\" list)");
  }
  for (size_t i = 0; i < doc["benchmarks"].size(); ++i) {
    const json& b = doc["benchmarks"][i];
    const std::string where = path + ": benchmarks[" + std::to_string(i) + "]";
    if (!b.is_object()) return Status::Corruption(where + " is not an object");
    if (b.value("run_type", json("iteration")) != "iteration") continue;  // mean, median, stddev, ...
    if (b.value("error_occurred", json(false)) == true) continue;         // skipped (SkipWithError)
    const json name = b.contains("run_name") ? b["run_name"] : b.value("name", json());
    bool ok = false;
    const double scale =
        UnitToNs(b.value("time_unit", json("ns")).is_string() ? b.value("time_unit", std::string("ns")) : "", &ok);
    if (!name.is_string() || !b.value("real_time", json()).is_number() || !ok) {
      return Status::Corruption(where + ": needs a name, a numeric real_time and a time_unit of ns, us, ms or s");
    }
    const double t = b["real_time"].get<double>() * scale;
    if (!std::isfinite(t) || t <= 0) return Status::Corruption(where + ": real_time must be positive");
    out->times_ns[name.get<std::string>()].push_back(t);
    for (const auto& [key, value] : b.items()) {
      if (value.is_number() && !IsStandardField(key))
        out->counters[name.get<std::string>()][key].push_back(value.get<double>());
    }
  }
  if (out->times_ns.empty()) return Status::Corruption(path + ": no benchmark results in it");
  return Status::Ok();
}

double SmallestReachableP(size_t m, size_t n) {
  double c = 1;  // C(m+n, m), as a double
  for (size_t k = 1; k <= m; ++k) c = c * static_cast<double>(n + k) / static_cast<double>(k);
  return 1.0 / c;
}

double MannWhitneyGreaterP(const std::vector<double>& base, const std::vector<double>& candidate) {
  const size_t n = base.size(), m = candidate.size();
  if (m == 0 || n == 0) return 1.0;
  double u = 0;
  bool ties = false;
  for (double c : candidate) {
    for (double b : base) {
      u += c > b ? 1.0 : c == b ? 0.5 : 0.0;
      ties |= c == b;
    }
  }
  if (!ties && m <= kExactMax && n <= kExactMax) return ExactUpperTail(m, n, u);
  // Normal approximation, with the tie correction of the variance and a continuity correction.
  std::vector<double> all(base);
  all.insert(all.end(), candidate.begin(), candidate.end());
  std::sort(all.begin(), all.end());
  double tie_term = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j] == all[i]) ++j;
    const double t = static_cast<double>(j - i);
    tie_term += t * t * t - t;
    i = j;
  }
  const double nn = static_cast<double>(m + n), mn = static_cast<double>(m * n);
  const double variance = mn / 12.0 * ((nn + 1) - tie_term / (nn * (nn - 1)));
  if (variance <= 0) return 1.0;
  const double z = (u - mn / 2 - 0.5) / std::sqrt(variance);
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

int RepetitionsToReach(double alpha) {
  int n = 1;
  while (n < 1000 && SmallestReachableP(n, n) >= alpha) ++n;
  return n;
}

bool GateReport::regressed() const {
  return std::any_of(benchmarks.begin(), benchmarks.end(), [](const BenchVerdict& v) { return v.regression; });
}

size_t GateReport::unjudged() const {
  return std::count_if(benchmarks.begin(), benchmarks.end(), [](const BenchVerdict& v) { return v.underpowered; });
}

std::vector<std::string> GateReport::Suspects() const {
  std::vector<std::string> names;
  for (const auto& v : benchmarks)
    if (v.regression && v.measure == kTimeMeasure) names.push_back(v.name);  // a count repeats: nothing to rerun
  return names;
}

namespace {

// The values a benchmark is judged by: its instruction counts where every repetition has
// one, else its times.
const std::vector<double>& Measured(const BenchSamples& s, const std::string& name, std::string* measure) {
  const auto& times = s.times_ns.at(name);
  const auto c = s.counters.find(name);
  if (c != s.counters.end()) {
    const auto n = c->second.find(kInstructionsCounter);
    if (n != c->second.end() && n->second.size() == times.size()) {
      *measure = kInstructionsCounter;
      return n->second;
    }
  }
  *measure = kTimeMeasure;
  return times;
}

// One benchmark's verdict from its two sets of values, by its measure's rule.
BenchVerdict Judge(const std::string& name, const std::string& measure, const std::vector<double>& b,
                   const std::vector<double>& c, const GateOptions& options) {
  BenchVerdict v;
  v.name = name;
  v.measure = measure;
  v.base_n = b.size();
  v.new_n = c.size();
  v.base_median = Median(b);
  v.new_median = Median(c);
  v.ratio = v.new_median / v.base_median;
  if (measure == kInstructionsCounter) {
    v.regression = v.ratio > 1 + options.instructions_threshold;
    v.improvement = v.ratio < 1 / (1 + options.instructions_threshold);
    return v;
  }
  v.p_slower = MannWhitneyGreaterP(b, c);
  v.p_faster = MannWhitneyGreaterP(c, b);
  v.underpowered = SmallestReachableP(b.size(), c.size()) >= options.alpha;
  v.regression = v.p_slower < options.alpha && v.ratio > 1 + options.threshold;
  v.improvement = v.p_faster < options.alpha && v.ratio < 1 / (1 + options.threshold);
  return v;
}

}  // namespace

Status CompareBenchmarks(const BenchSamples& base, const BenchSamples& candidate, const GateOptions& options,
                         GateReport* out) {
  *out = GateReport();
  out->options = options;
  if (!(options.alpha > 0 && options.alpha < 1)) return Status::InvalidArgument("--alpha must lie between 0 and 1");
  if (!(options.threshold >= 0 && options.threshold < 10)) {
    return Status::InvalidArgument("--threshold must be a fraction such as 0.10 (10%)");
  }
  if (!(options.instructions_threshold >= 0 && options.instructions_threshold < 10)) {
    return Status::InvalidArgument("--instructions-threshold must be a fraction such as 0.015 (1.5%)");
  }
  double log_sum = 0;
  for (const auto& [name, unused] : base.times_ns) {
    if (!candidate.times_ns.count(name)) {
      out->only_in_base.push_back(name);
      continue;
    }
    std::string measure, candidate_measure;
    const std::vector<double>& b_values = Measured(base, name, &measure);
    const std::vector<double>& c_values = Measured(candidate, name, &candidate_measure);
    if (measure != candidate_measure) {
      return Status::InvalidArgument(name + ": measured by " + measure + " in the base and by " + candidate_measure +
                                     " in the new results: the two cannot be compared");
    }
    BenchVerdict v = Judge(name, measure, b_values, c_values, options);
    if (!(v.ratio > 0 && std::isfinite(v.ratio))) {
      return Status::InvalidArgument(name + ": a median of zero " + measure + ": nothing to compare");
    }
    log_sum += std::log(v.ratio);
    out->benchmarks.push_back(v);
  }
  for (const auto& [name, c] : candidate.times_ns) {
    if (!base.times_ns.count(name)) out->only_in_new.push_back(name);
  }
  if (out->benchmarks.empty()) return Status::InvalidArgument("the two files share no benchmark: nothing to compare");
  out->geomean_ratio = std::exp(log_sum / static_cast<double>(out->benchmarks.size()));
  return Status::Ok();
}

void ApplyRerun(const BenchSamples& base, const BenchSamples& candidate, GateReport* report) {
  for (auto& v : report->benchmarks) {
    if (!v.regression || !base.times_ns.count(v.name) || !candidate.times_ns.count(v.name)) continue;
    std::string measure, candidate_measure;
    const auto& b = Measured(base, v.name, &measure);
    const auto& c = Measured(candidate, v.name, &candidate_measure);
    if (measure != v.measure || candidate_measure != v.measure) continue;
    const BenchVerdict again = Judge(v.name, v.measure, b, c, report->options);
    v.rerun = RerunVerdict{again.base_n, again.new_n, again.ratio, again.p_slower, again.regression};
    v.regression = again.regression;
  }
}

std::string FilterForNames(const std::vector<std::string>& names) {
  std::string filter = "^(";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) filter += '|';
    for (char ch : names[i]) {
      if (std::strchr(".[]{}()*+?^$|\\", ch)) filter += '\\';
      filter += ch;
    }
  }
  return filter + ")$";
}

json GateReportJson(const GateReport& r) {
  json rows = json::array();
  for (const auto& v : r.benchmarks) {
    json row = {{"name", v.name},
                {"measure", v.measure},
                {"base_n", v.base_n},
                {"new_n", v.new_n},
                {"base_median", v.base_median},
                {"new_median", v.new_median},
                {"ratio", v.ratio},
                {"regression", v.regression},
                {"improvement", v.improvement},
                {"underpowered", v.underpowered}};
    if (v.measure == kTimeMeasure) {
      row["p_slower"] = v.p_slower;
      row["p_faster"] = v.p_faster;
    }
    if (v.rerun) {
      row["rerun"] = {{"base_n", v.rerun->base_n},
                      {"new_n", v.rerun->new_n},
                      {"ratio", v.rerun->ratio},
                      {"p_slower", v.rerun->p_slower},
                      {"regression", v.rerun->regression}};
    }
    rows.push_back(std::move(row));
  }
  return {{"regressed", r.regressed()},
          {"unjudged", r.unjudged()},
          {"alpha", r.options.alpha},
          {"threshold", r.options.threshold},
          {"instructions_threshold", r.options.instructions_threshold},
          {"repetitions_needed", RepetitionsToReach(r.options.alpha)},
          {"geomean_ratio", r.geomean_ratio},
          {"benchmarks", rows},
          {"only_in_base", r.only_in_base},
          {"only_in_new", r.only_in_new}};
}

namespace {

// A verdict in words, with the measure it used and the rerun that confirmed or cleared it.
std::string VerdictWords(const BenchVerdict& v, const GateOptions& o) {
  char buf[160];
  if (v.underpowered) {
    std::snprintf(buf, sizeof(buf), "NOT JUDGED (too few repetitions to reach alpha: %d each needed)",
                  RepetitionsToReach(o.alpha));
    return buf;
  }
  if (!v.rerun) return v.regression ? "REGRESSED" : v.improvement ? "improved" : "same";
  std::snprintf(buf, sizeof(buf), " (rerun: ratio %.3f, p %.2g, n %zu/%zu)", v.rerun->ratio, v.rerun->p_slower,
                v.rerun->base_n, v.rerun->new_n);
  return (v.rerun->regression ? "REGRESSED, held on the rerun" : "same: a suspect the rerun cleared") +
         std::string(buf);
}

}  // namespace

std::string GateReportText(const GateReport& r) {
  std::string out;
  char line[640];
  int regressions = 0;
  for (const auto& v : r.benchmarks) regressions += v.regression;
  const size_t unjudged = r.unjudged();
  std::snprintf(line, sizeof(line),
                "%s: %d of %zu benchmarks regressed (time: alpha %g, threshold %.0f%%; instructions: threshold "
                "%.1f%%); geometric mean ratio %.3f\n",
                regressions ? "REGRESSION"
                : unjudged  ? "NOT JUDGED"
                            : "OK",
                regressions, r.benchmarks.size(), r.options.alpha, r.options.threshold * 100,
                r.options.instructions_threshold * 100, r.geomean_ratio);
  out += line;
  if (unjudged) {
    std::snprintf(line, sizeof(line),
                  "%zu benchmark(s) have too few repetitions for a one-sided U test to reach p < %g: run at least "
                  "%d of each (--repetitions)\n",
                  unjudged, r.options.alpha, RepetitionsToReach(r.options.alpha));
    out += line;
  }
  out += "\n";
  std::snprintf(line, sizeof(line), "  %-48s %-12s %6s %14s %14s %8s %10s  %s\n", "benchmark", "measure", "n",
                "base median", "new median", "ratio", "p(slower)", "verdict");
  out += line;
  for (const auto& v : r.benchmarks) {
    const bool instructions = v.measure == kInstructionsCounter;
    const char* unit = instructions ? "Ir" : "ns";
    char p[32];
    std::snprintf(p, sizeof(p), instructions ? "-" : "%.2g", v.p_slower);
    std::snprintf(line, sizeof(line), "  %-48s %-12s %2zu/%-3zu %12.6g %s %12.6g %s %8.4f %10s  %s\n", v.name.c_str(),
                  v.measure.c_str(), v.base_n, v.new_n, v.base_median, unit, v.new_median, unit, v.ratio, p,
                  VerdictWords(v, r.options).c_str());
    out += line;
  }
  for (const auto& n : r.only_in_base) out += "  only in the base: " + n + "\n";
  for (const auto& n : r.only_in_new) out += "  only in the new file: " + n + "\n";
  return out;
}

}  // namespace lockstep
