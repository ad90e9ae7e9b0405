#include "cli/report_command.h"

#include <cstdio>
#include <memory>

#include "cli/exit_codes.h"
#include "cli/tolerance_flags.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "report/report.h"

namespace lockstep {
namespace {

struct ReportFlags {
  std::vector<std::string> runs, labels;
  std::string out;
  std::string atol, rtol, ulp;
  bool json = false;
};

}  // namespace

std::function<int()> AddReportCommand(CLI::App* app) {
  auto flags = std::make_shared<ReportFlags>();
  CLI::App* cmd = app->add_subcommand(
      "report",
      "Draw runs as one self-contained HTML page (inline SVG, no script or network): loss, eval loss, learning\n"
      "rate and grad norm by step, overlaid, with resumes and checkpoints on the time line; for two or more\n"
      "runs, where each parts from the first and why, the loss delta after it, the settings that differ,\n"
      "where each ran, the checkpoint audit, the samples drawn and the tensor diff of a shared checkpoint.\n"
      "Lockstep or Hugging Face run directories, in any mix. Plain text stays `lockstep diff`'s.\n"
      "Exit 0 written and identical (or one run), 1 written and the runs differ, 2 bad usage or unreadable input.");
  cmd->add_option("runs", flags->runs, "Run directories; the first is the reference")->required();
  cmd->add_option("--out", flags->out, "The HTML file to write (replaced whole, never half-written)")
      ->required()
      ->type_name("FILE.html");
  cmd->add_option("--label", flags->labels, "A name for each run, in order (default: its directory's name)")
      ->type_name("NAME");
  AddToleranceFlags(cmd, &flags->atol, &flags->rtol, &flags->ulp,
                    "Accept values at most N units in the last place apart, in their own dtype");
  cmd->add_flag("--json", flags->json, "Print what was written and each verdict as JSON on stdout");
  return [flags]() {
    const auto fail = [&](const Status& st) { return ReportFailure("report", st, flags->json, IoRole::kInput); };
    RunsReportOptions options;
    Status st = ParseToleranceFlags(flags->atol, flags->rtol, flags->ulp, &options.tolerance);
    if (st.ok() && flags->labels.size() > flags->runs.size()) {
      st = Status::InvalidArgument(std::to_string(flags->labels.size()) + " --label for " +
                                   std::to_string(flags->runs.size()) + " runs");
    }
    if (st.ok()) st = CheckReportPath(flags->out);
    for (const auto& run : flags->runs) {
      if (st.ok()) st = CheckInputPath(run);
    }
    if (!st.ok()) return fail(st);
    options.labels = flags->labels;
    std::string html;
    RunsReportSummary summary;
    if (!(st = RenderRunsReport(flags->runs, options, &html, &summary)).ok()) return fail(st);
    if (!(st = WriteReportFile(flags->out, html)).ok()) {
      return ReportFailure("report", st, flags->json, IoRole::kWork);
    }
    const bool pass = summary.all_identical();
    if (flags->json) {
      nlohmann::json j = {{"report", flags->out},           {"bytes", html.size()},
                          {"runs", summary.runs},           {"comparisons", summary.comparisons},
                          {"identical", summary.identical}, {"within_tolerance", summary.within_tolerance},
                          {"verdicts", summary.verdicts}};
      std::printf("%s\n", DumpJson(j, 2).c_str());
    } else {
      std::printf("wrote %s (%.1f KB)\n", flags->out.c_str(), static_cast<double>(html.size()) / 1024.0);
      for (const auto& v : summary.verdicts) std::printf("  %s\n", v.c_str());
    }
    return pass ? kExitOk : kExitFailed;
  };
}

}  // namespace lockstep
