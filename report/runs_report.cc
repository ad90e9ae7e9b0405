// `lockstep report RUN [RUN ...]`: the runs read once each, every candidate compared with
// the first, and the page assembled from the sections of run_page.h.
#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <map>

#include "formats/file_util.h"
#include "report/html.h"
#include "report/report.h"
#include "report/run_page.h"

namespace fs = std::filesystem;

namespace lockstep {

std::string RunsPage(const std::vector<ReportRun>& runs, const Tolerance& tolerance) {
  std::string title = "Lockstep report: " + runs.front().label;
  for (size_t i = 1; i < runs.size(); ++i) title += (i == 1 ? " vs " : ", ") + runs[i].label;
  std::string body = "<h1>" + HtmlEscape(title) + "</h1>\n";
  body += HtmlParagraph(
      "Made by lockstep " LOCKSTEP_VERSION " report" +
          std::string(runs.size() > 1 ? "; the first run is the reference each other run is "
                                        "compared with" +
                                            std::string(tolerance.any() ? ", within tolerance " + tolerance.ToString()
                                                                        : ", bit for bit")
                                      : "") +
          ".",
      "sub");
  body += RunsSection(runs) + ComparisonSection(runs) + CurvesSection(runs) + SettingsSection(runs) +
          AuditSection(runs) + CoverageSection(runs) + TensorDiffSection(runs, tolerance);
  return HtmlPage(title, body);
}

Status RenderRunsReport(const std::vector<std::string>& run_dirs, const RunsReportOptions& options, std::string* html,
                        RunsReportSummary* summary) {
  if (run_dirs.empty()) return Status::InvalidArgument("no run directory given");
  std::vector<ReportRun> runs(run_dirs.size());
  for (size_t i = 0; i < run_dirs.size(); ++i) {
    runs[i].label =
        i < options.labels.size() && !options.labels[i].empty() ? options.labels[i] : DefaultRunLabel(run_dirs[i]);
    runs[i].style = static_cast<int>(i);
    LOCKSTEP_RETURN_IF_ERROR(LoadRunChecked(run_dirs[i], &runs[i].side));
    AuditReportRun(&runs[i]);
  }
  // Two runs of one name (a/run and b/run) are told apart by their paths.
  std::map<std::string, int> uses;
  for (const auto& run : runs) ++uses[run.label];
  for (size_t i = 0; i < runs.size(); ++i) {
    const bool named = i < options.labels.size() && !options.labels[i].empty();
    if (uses[runs[i].label] > 1 && !named) runs[i].label = run_dirs[i];
  }
  *summary = RunsReportSummary();
  summary->runs = static_cast<int>(runs.size());
  for (size_t i = 1; i < runs.size(); ++i) {
    ++summary->comparisons;
    RunDiff d;
    const Status st = DiffLoadedRuns(runs.front().side, runs[i].side, options.tolerance, &d);
    if (!st.ok()) {
      runs[i].diff_error = st.message();
      summary->verdicts.push_back(runs[i].label + ": NOT COMPARED: " + st.message());
      continue;
    }
    const bool compared = d.compared_anything();
    summary->identical += compared && d.identical();
    summary->within_tolerance += compared && !d.identical() && d.within_tolerance();
    summary->verdicts.push_back(runs[i].label + ": " + RunDiffVerdict(d));
    runs[i].diff = std::move(d);
  }
  *html = RunsPage(runs, options.tolerance);
  return Status::Ok();
}

Status CheckReportPath(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return Status::InvalidArgument(path + ": is a directory; name a file for the report");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return Status::InvalidArgument(path + ": no such directory " + parent.string());
  }
  return Status::Ok();
}

Status WriteReportFile(const std::string& path, const std::string& html) {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  Status st = WriteFileDurably(temporary, html);
  if (st.ok()) st = RenameDurably(temporary, path);
  if (!st.ok()) std::remove(temporary.c_str());
  return st;
}

}  // namespace lockstep
