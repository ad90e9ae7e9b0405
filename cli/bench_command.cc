#include "cli/bench_command.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <memory>
#include <vector>

#include "bench/gate.h"
#include "bench/interleave.h"
#include "cli/arg_check.h"
#include "cli/exit_codes.h"
#include "formats/json_file.h"

namespace lockstep {
namespace {

struct BenchFlags {
  std::string action, base, candidate;
  std::string rounds = "10";
  std::vector<std::string> extra;  // after --: passed to both benchmark binaries
  std::string alpha = "0.01", threshold = "0.10";
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

}  // namespace

std::function<int()> AddBenchCommand(CLI::App* app) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app->add_subcommand(
      "bench",
      "The CI gate over Google Benchmark results (repetitions as separate entries). A benchmark\n"
      "regressed when it is slower with significance (one-sided Mann-Whitney U, p < --alpha) and by\n"
      "more than --threshold; every benchmark's median ratio and p-value, improvements and the\n"
      "geometric mean are printed.\n"
      "  lockstep bench compare BASE.json NEW.json        two result files\n"
      "  lockstep bench ab OLD_BENCH NEW_BENCH [-- ARGS]  two builds' benchmark binaries, run\n"
      "                                                   interleaved (A B A B ...) --rounds times\n"
      "Exit 0 no regression, 1 a regression, 2 bad usage, unreadable or mismatched inputs.");
  cmd->add_option("action", flags->action, "compare or ab")->required();
  cmd->add_option("base", flags->base, "The baseline: results JSON (compare) or benchmark binary (ab)")->required();
  cmd->add_option("new", flags->candidate, "The candidate, of the same kind")->required();
  cmd->add_option("--rounds", flags->rounds, "ab: how many A B pairs to run")->type_name("N")->capture_default_str();
  cmd->add_option("extra", flags->extra, "ab: arguments for both binaries, after --");
  cmd->add_option("--alpha", flags->alpha, "Significance level of the slowdown")->type_name("P")->capture_default_str();
  cmd->add_option("--threshold", flags->threshold, "Minimum slowdown that counts, as a fraction")
      ->type_name("F")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print the report as JSON on stdout");
  return [flags]() {
    const auto fail = [&](const Status& st) { return ReportFailure("bench", st, flags->json); };
    if (flags->action != "compare" && flags->action != "ab") {
      return fail(Status::InvalidArgument("unknown action '" + flags->action +
                                          "': lockstep bench compare BASE.json NEW.json, or lockstep bench ab OLD NEW"));
    }
    GateOptions options;
    Status st = ParseFraction("--alpha", flags->alpha, &options.alpha);
    if (st.ok()) st = ParseFraction("--threshold", flags->threshold, &options.threshold);
    BenchSamples base, candidate;
    if (flags->action == "ab") {
      InterleaveOptions ab{flags->base, flags->candidate, 0, flags->extra};
      int64_t rounds = 0;
      if (st.ok()) st = ParseWholeNumber("--rounds", flags->rounds, 2, &rounds);
      ab.rounds = static_cast<int>(std::min<int64_t>(rounds, 10000));
      if (st.ok()) st = RunInterleaved(ab, &base, &candidate);
    } else {
      if (st.ok()) st = ReadBenchmarkJson(flags->base, &base);
      if (st.ok()) st = ReadBenchmarkJson(flags->candidate, &candidate);
    }
    GateReport report;
    if (st.ok()) st = CompareBenchmarks(base, candidate, options, &report);
    if (!st.ok()) return fail(st);
    if (flags->json) std::printf("%s\n", DumpJson(GateReportJson(report), 2).c_str());
    else std::fputs(GateReportText(report).c_str(), stdout);
    return report.regressed() ? kExitFailed : kExitOk;
  };
}

}  // namespace lockstep
