// The parts of a runs page, shared by `lockstep report` and verify-resume's report: the runs
// as read (diff/run_side.h), each candidate's comparison with the first, and the sections
// drawn from them. Internal to report/. No LibTorch here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "diff/run_divergence.h"
#include "diff/run_side.h"
#include "inspect/audit.h"

namespace lockstep {

struct ReportRun {
  std::string label;
  RunSide side;
  int style = 0;                     // its colour and dash (report/svg_chart.h)
  std::optional<RunDiff> diff;       // against the first run; none for the first
  std::string diff_error;            // why no comparison was made, when one was attempted
  std::optional<AuditReport> audit;  // the cheap checks of `lockstep inspect`, from the log already read
  std::string audit_error;           // why there is none
};

// Audits `run` (AuditRun's cheap checks, on the step log RunSide already holds).
void AuditReportRun(ReportRun* run);

// The whole runs page (every section below), the first run the reference.
std::string RunsPage(const std::vector<ReportRun>& runs, const Tolerance& tolerance);

// A run's label from its directory: the last path component ("" names become the path).
std::string DefaultRunLabel(const std::string& dir);

// The loss (with eval loss), learning-rate and grad-norm charts of every run overlaid, and
// for candidates that part from the first run the |loss delta| after their divergence.
std::string CurvesSection(const std::vector<ReportRun>& runs);

// Each run's source, length, checkpoints and resumes; then each comparison's verdict, its
// first divergence with the cause, and what was not compared.
std::string RunsSection(const std::vector<ReportRun>& runs);
std::string ComparisonSection(const std::vector<ReportRun>& runs);

// The settings that differ (per candidate) and where each run ran (every run side by side).
std::string SettingsSection(const std::vector<ReportRun>& runs);

// Each run's checkpoint audit (ReportRun::audit), its samples drawn per epoch (the audit's
// coverage finding), and for each candidate the tensor diff of the newest checkpoint it shares with
// the first run as a bar chart of max ULP per tensor.
std::string AuditSection(const std::vector<ReportRun>& runs);
std::string CoverageSection(const std::vector<ReportRun>& runs);
std::string TensorDiffSection(const std::vector<ReportRun>& runs, const Tolerance& tolerance);

}  // namespace lockstep
