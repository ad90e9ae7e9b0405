#include "cli/bench_command.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "bench/gate.h"
#include "bench/interleave.h"
#include "bench/ratios.h"
#include "bench/runner.h"
#include "cli/arg_check.h"
#include "cli/exit_codes.h"
#include "formats/json_file.h"

namespace lockstep {
namespace {

struct BenchFlags {
  std::string action, base, candidate;
  bool quick = false;
  std::string out, floors, repetitions, baseline;
  std::string rounds = "10";
  std::vector<std::string> extra;  // after --: passed to both benchmark binaries
  std::string alpha = "0.01", threshold = "0.10", instructions_threshold = "0.015";
  bool json = false;
};

Status ParseFraction(const std::string& flag, const std::string& text, double* out) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v)) {
    return Status::InvalidArgument(flag + " " + text + ": expected a number such as 0.01");
  }
  *out = v;
  return Status::Ok();
}

int ReportRatios(const BenchFlags& flags, const BenchSamples& samples);

// `lockstep bench` with no action: run the suites, report the ratios, check the floors.
int RunSuites(const BenchFlags& flags) {
  const auto fail = [&](const Status& st) { return ReportFailure("bench", st, flags.json); };
  BenchRunOptions options;
  options.quick = flags.quick;
  options.bench_dir = FindBenchDir();
  options.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  int64_t reps = 0;
  if (!flags.repetitions.empty()) {
    const Status st = ParseWholeNumber("--repetitions", flags.repetitions, 2, &reps);
    if (!st.ok()) return fail(st);
    options.repetitions = static_cast<int>(std::min<int64_t>(reps, 1000));
  }
  nlohmann::json merged;
  Status st = RunBenchSuites(options, &merged);
  if (!st.ok()) return fail(st);  // suites not built: 2; a suite that failed: 1
  BenchSamples samples;
  st = BenchSamplesFromJson(merged, "lockstep bench results", &samples);
  if (st.ok() && !flags.out.empty()) st = WriteJsonFile(flags.out, merged);
  if (!st.ok()) return fail(st);
  return ReportRatios(flags, samples);
}

// The ratios of results already measured, and their floors: for `bench` and `bench report`.
int ReportRatios(const BenchFlags& flags, const BenchSamples& samples) {
  const auto fail = [&](const Status& st) { return ReportFailure("bench", st, flags.json); };
  Status st;
  const std::vector<RatioValue> ratios = ComputeRatios(samples);
  FloorReport floors;
  if (!flags.floors.empty()) {
    st = CheckFloors(flags.floors, ratios, &floors);
    if (!st.ok()) return fail(st);
  }
  if (flags.json) {
    nlohmann::json report = {{"ratios", RatiosJson(ratios)}, {"results_file", flags.out}};
    if (!flags.floors.empty()) report["floors"] = FloorReportJson(floors);
    std::printf("%s\n", DumpJson(report, 2).c_str());
  } else {
    std::fputs(RatiosText(ratios).c_str(), stdout);
    if (!flags.floors.empty()) std::fputs(FloorReportText(floors).c_str(), stdout);
    if (!flags.out.empty()) std::printf("results: %s (Google Benchmark JSON)\n", flags.out.c_str());
  }
  return floors.crossed() ? kExitFailed : kExitOk;
}

// `bench ab --baseline OLD_LOCKSTEP`: that build's suites against this one's.
// With `rerun` (and the first samples, `first`), only `rerun`'s suspects run again.
Status RunBuildsInterleaved(const BenchFlags& flags, int rounds, BenchSamples* base, BenchSamples* candidate,
                            const GateReport* rerun = nullptr, const BenchSamples* first = nullptr) {
  AbRunOptions o;
  o.baseline_dir = BenchDirBeside(flags.baseline);
  o.candidate_dir = FindBenchDir();
  if (o.baseline_dir.empty()) {
    return Status::NotFound("--baseline " + flags.baseline +
                            ": not a lockstep with benchmark suites beside it "
                            "(expected <its dir>/../bench/train_bench, as a build tree has)");
  }
  if (o.candidate_dir.empty()) return Status::NotFound("no benchmark suites found beside this lockstep");
  o.quick = flags.quick;
  o.rounds = rounds;
  o.args = flags.extra;
  if (rerun != nullptr) {
    for (const std::string& name : rerun->Suspects()) {
      const auto it = first->suite_of.find(name);
      if (it != first->suite_of.end()) o.only[name] = it->second;
    }
    if (o.only.empty()) return Status::Ok();  // no suite known for them: the first verdicts stand
  }
  o.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  return RunSuitesInterleaved(o, base, candidate);
}

// The flags and the help text of `lockstep bench`.
void DefineBenchCommand(CLI::App* app, BenchFlags* flags) {
  CLI::App* cmd = app->add_subcommand(
      "bench",
      "Throughput, and the CI gates.\n"
      "  lockstep bench [--quick] [--out FILE] [--check-floors FLOORS.json]\n"
      "      runs the benchmark suites (training against the Python peer, checkpoint save and load\n"
      "      against raw I/O and torch.save/torch.load, recording cost, resume, inspect, ...), their\n"
      "      repetitions interleaved, and prints the ratios measured in the run; --out writes every\n"
      "      result as Google Benchmark JSON. --quick: under 3 minutes on 2 cores.\n"
      "  lockstep bench report RESULTS.json [--check-floors FLOORS.json]   the ratios of saved results\n"
      "  lockstep bench compare BASE.json NEW.json        two result files\n"
      "  lockstep bench ab OLD_BENCH NEW_BENCH [-- ARGS]  two builds' benchmark binaries, run\n"
      "                                                   interleaved (A B A B ...) --rounds times\n"
      "  lockstep bench ab --baseline OLD_LOCKSTEP [--quick] [-- ARGS]\n"
      "      every suite of another build (its lockstep, e.g. a checkout of main built aside)\n"
      "      against this one's, interleaved suite by suite\n"
      "By time, a benchmark regressed when it is slower with significance (one-sided Mann-Whitney\n"
      "U, p < --alpha) and by more than --threshold; the suites run at least the repetitions that\n"
      "let p reach alpha (5 at 0.01), and fewer are NOT JUDGED (exit 2), never passed. bench ab\n"
      "reruns every suspect, interleaved, and it must regress on the rerun too. A benchmark that\n"
      "reports an instruction count (instr_bench, counted by callgrind) is judged by it: more than\n"
      "--instructions-threshold more instructions is a regression. Each verdict names its measure.\n"
      "Exit 0 ok, 1 a regression or a ratio under its floor, 2 bad usage, unreadable or mismatched\n"
      "inputs, benchmarks not judged, or suites not built.");
  cmd->add_option("action", flags->action, "report, compare or ab; none: run the suites");
  cmd->add_option("base", flags->base, "The baseline: results JSON (compare) or benchmark binary (ab)");
  cmd->add_option("new", flags->candidate, "The candidate, of the same kind");
  cmd->add_flag("--quick", flags->quick, "Run: the quick subset, 5 repetitions");
  cmd->add_option("--out", flags->out, "Run: write every result here as Google Benchmark JSON")->type_name("FILE");
  cmd->add_option("--check-floors", flags->floors, "Run: fail when a ratio crosses its floor in this file")
      ->type_name("FLOORS.json");
  cmd->add_option("--repetitions", flags->repetitions, "Run: repetitions of each benchmark (default 5 quick, 10)")
      ->type_name("N");
  cmd->add_option("--baseline", flags->baseline, "ab: the other build's lockstep; its suites run against these")
      ->type_name("OLD_LOCKSTEP");
  cmd->add_option("--rounds", flags->rounds, "ab: how many A B pairs to run")->type_name("N")->capture_default_str();
  cmd->add_option("extra", flags->extra, "ab: arguments for both binaries, after --");
  cmd->add_option("--alpha", flags->alpha, "Significance level of the slowdown")->type_name("P")->capture_default_str();
  cmd->add_option("--threshold", flags->threshold, "Minimum slowdown that counts, as a fraction")
      ->type_name("F")
      ->capture_default_str();
  cmd->add_option("--instructions-threshold", flags->instructions_threshold,
                  "Minimum increase in instructions that counts, as a fraction")
      ->type_name("F")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print the report as JSON on stdout");
}

// bench compare and bench ab: the gate over two sets of results.
int RunGate(const BenchFlags& flags) {
  // compare reads result files: one that cannot be read is bad input (2).
  const IoRole role = flags.action == "compare" ? IoRole::kInput : IoRole::kWork;
  const auto fail = [&](const Status& st) { return ReportFailure("bench", st, flags.json, role); };
  const bool ab_builds = flags.action == "ab" && !flags.baseline.empty();
  if (ab_builds && !flags.base.empty()) {
    return fail(
        Status::InvalidArgument("bench ab takes either --baseline OLD_LOCKSTEP or OLD_BENCH NEW_BENCH, not both"));
  }
  if (!ab_builds && (flags.base.empty() || flags.candidate.empty())) {
    return fail(Status::InvalidArgument("bench " + flags.action + " needs two inputs: BASE and NEW"));
  }
  GateOptions options;
  Status st = ParseFraction("--alpha", flags.alpha, &options.alpha);
  if (st.ok()) st = ParseFraction("--threshold", flags.threshold, &options.threshold);
  if (st.ok())
    st = ParseFraction("--instructions-threshold", flags.instructions_threshold, &options.instructions_threshold);
  BenchSamples base, candidate;
  int64_t rounds = 0;
  if (st.ok() && flags.action == "ab") st = ParseWholeNumber("--rounds", flags.rounds, 2, &rounds);
  rounds = std::min<int64_t>(rounds, 10000);
  if (st.ok() && ab_builds) {
    st = RunBuildsInterleaved(flags, static_cast<int>(rounds), &base, &candidate);
  } else if (flags.action == "ab") {
    InterleaveOptions ab{flags.base, flags.candidate, static_cast<int>(rounds), flags.extra};
    if (st.ok()) st = RunInterleaved(ab, &base, &candidate);
  } else {
    if (st.ok()) st = ReadBenchmarkJson(flags.base, &base);
    if (st.ok()) st = ReadBenchmarkJson(flags.candidate, &candidate);
  }
  GateReport report;
  if (st.ok()) st = CompareBenchmarks(base, candidate, options, &report);
  // Sequential: what looks like a regression is measured again, interleaved, and must
  // hold there too. Result files (compare) cannot be rerun.
  if (st.ok() && flags.action == "ab" && !report.Suspects().empty()) {
    std::fprintf(stderr, "lockstep bench ab: rerunning %zu suspect(s)\n", report.Suspects().size());
    BenchSamples base_again, candidate_again;
    if (ab_builds) {
      st = RunBuildsInterleaved(flags, static_cast<int>(rounds), &base_again, &candidate_again, &report, &base);
    } else {
      InterleaveOptions ab{flags.base, flags.candidate, static_cast<int>(rounds), flags.extra};
      ab.args.push_back("--benchmark_filter=" + FilterForNames(report.Suspects()));
      st = RunInterleaved(ab, &base_again, &candidate_again);
    }
    if (st.ok()) ApplyRerun(base_again, candidate_again, &report);
  }
  if (!st.ok()) return fail(st);
  if (flags.json)
    std::printf("%s\n", DumpJson(GateReportJson(report), 2).c_str());
  else
    std::fputs(GateReportText(report).c_str(), stdout);
  if (report.regressed()) return kExitFailed;
  return report.unjudged() > 0 ? kExitUsage : kExitOk;  // a gate that could not fire passes nothing
}

}  // namespace

std::function<int()> AddBenchCommand(CLI::App* app) {
  auto flags = std::make_shared<BenchFlags>();
  DefineBenchCommand(app, flags.get());
  return [flags]() {
    // compare and report read result files; a file that cannot be read is bad input (2).
    const IoRole role = flags->action == "compare" || flags->action == "report" ? IoRole::kInput : IoRole::kWork;
    const auto fail = [&](const Status& st) { return ReportFailure("bench", st, flags->json, role); };
    if (flags->action.empty()) return RunSuites(*flags);
    if (flags->action == "report") {
      BenchSamples samples;
      const Status st = flags->base.empty() ? Status::InvalidArgument("bench report needs a results file")
                                            : ReadBenchmarkJson(flags->base, &samples);
      return st.ok() ? ReportRatios(*flags, samples) : fail(st);
    }
    if (flags->action != "compare" && flags->action != "ab") {
      return fail(Status::InvalidArgument("unknown action '" + flags->action +
                                          "': lockstep bench [--quick], lockstep bench report RESULTS.json, lockstep "
                                          "bench compare BASE.json NEW.json, or lockstep bench ab OLD NEW"));
    }
    return RunGate(*flags);
  };
}

}  // namespace lockstep
