// `lockstep report`: one self-contained HTML page of pictures and tables for runs and for
// verify-resume. Curves per run overlaid (loss and eval loss, learning rate, grad norm), with
// resumes and checkpoints on the time line; for two or more runs, each candidate's first
// divergence from the first run drawn with its cause and the loss delta after it; then what a
// picture cannot replace: the settings that differ, where each ran, the checkpoint audit,
// the samples drawn, and the tensor diff of a shared checkpoint. Inline SVG and CSS only: no
// script, font, image or network reference. Plain text stays every command's output; this
// is for people and CI artifacts. No LibTorch here.
#pragma once

#include <string>
#include <vector>

#include "diff/tensor_compare.h"
#include "formats/status.h"

namespace lockstep {

struct VerifyResumeReport;
struct VerifyCmdReport;

struct RunsReportOptions {
  // A name per run, in order; empty (or one missing): the directory's own name.
  std::vector<std::string> labels;
  Tolerance tolerance;  // what the comparisons accept; bit for bit when unset
};

// What the page found, for the command's exit code and --json.
struct RunsReportSummary {
  int runs = 0;
  int comparisons = 0;                // candidates compared with the first run
  int identical = 0;                  // ... found identical, with something compared
  int within_tolerance = 0;           // ... found different, but within the tolerance
  std::vector<std::string> verdicts;  // one line per candidate (RunDiffVerdict)
  bool all_identical() const { return comparisons == identical + within_tolerance; }
};

// Reads every run directory (Lockstep's, Hugging Face's output_dir, or one of each; a run
// without a step log is drawn from log_history) and renders the page into `*html`: the first
// run is the reference each other run is compared with. A missing, foreign or damaged run
// directory is a Status naming it; a comparison that fails (a damaged checkpoint) is shown
// on the page as not made, and never claimed as a verdict.
Status RenderRunsReport(const std::vector<std::string>& run_dirs, const RunsReportOptions& options, std::string* html,
                        RunsReportSummary* summary);

// verify-resume's page: the variants on one time line (their stops, kills and crash points,
// where each resumed, each verdict), then the reference's and every variant's curves with
// each variant's first divergence. Runs whose directory can no longer be read are listed as
// such.
Status RenderVerifyResumeReport(const VerifyResumeReport& report, std::string* html);

// InvalidArgument naming `path` when a report cannot go there: it is a directory, or its
// directory does not exist. Checked before the work, so a long verification does not end in it.
Status CheckReportPath(const std::string& path);

// The same for `verify-resume --cmd` (a user's own trainer): the variants, how each was
// interrupted and resumed, and the curves of the runs in `work_dir`.
Status RenderVerifyCmdReport(const VerifyCmdReport& report, const std::string& work_dir, std::string* html);

// Writes `html` to `path` through a temporary file beside it, renamed over `path` only when
// whole and synced: a full disk or a signal never leaves half a report, nor removes an older
// one. IOError naming the file otherwise.
Status WriteReportFile(const std::string& path, const std::string& html);

}  // namespace lockstep
