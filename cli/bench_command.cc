#include "cli/bench_command.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "bench/gate.h"
#include "cli/exit_codes.h"
#include "formats/json_file.h"

namespace lockstep {
namespace {

struct BenchFlags {
  std::string action, base, candidate;
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
      "lockstep bench compare BASE.json NEW.json: the CI gate over two Google Benchmark JSON files\n"
      "(repetitions as separate entries). A benchmark regressed when it is slower with significance\n"
      "(one-sided Mann-Whitney U, p < --alpha) and by more than --threshold. Prints every benchmark's\n"
      "median ratio and p-value, improvements, and the geometric mean. Exit 0 no regression, 1 a\n"
      "regression, 2 unreadable or mismatched inputs.");
  cmd->add_option("action", flags->action, "compare")->required();
  cmd->add_option("base", flags->base, "The baseline's Google Benchmark JSON")->required();
  cmd->add_option("new", flags->candidate, "The candidate's Google Benchmark JSON")->required();
  cmd->add_option("--alpha", flags->alpha, "Significance level of the slowdown")->type_name("P")->capture_default_str();
  cmd->add_option("--threshold", flags->threshold, "Minimum slowdown that counts, as a fraction")
      ->type_name("F")
      ->capture_default_str();
  cmd->add_flag("--json", flags->json, "Print the report as JSON on stdout");
  return [flags]() {
    const auto fail = [&](const Status& st) { return ReportFailure("bench", st, flags->json); };
    if (flags->action != "compare") {
      return fail(Status::InvalidArgument("unknown action '" + flags->action + "': lockstep bench compare BASE NEW"));
    }
    GateOptions options;
    Status st = ParseFraction("--alpha", flags->alpha, &options.alpha);
    if (st.ok()) st = ParseFraction("--threshold", flags->threshold, &options.threshold);
    BenchSamples base, candidate;
    if (st.ok()) st = ReadBenchmarkJson(flags->base, &base);
    if (st.ok()) st = ReadBenchmarkJson(flags->candidate, &candidate);
    GateReport report;
    if (st.ok()) st = CompareBenchmarks(base, candidate, options, &report);
    if (!st.ok()) return fail(st);
    if (flags->json) std::printf("%s\n", DumpJson(GateReportJson(report), 2).c_str());
    else std::fputs(GateReportText(report).c_str(), stdout);
    return report.regressed() ? kExitFailed : kExitOk;
  };
}

}  // namespace lockstep
