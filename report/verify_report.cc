// verify-resume's page: every variant on one time line (its processes, how each ended, where
// the next resumed, the first divergence), a table of the same, then the curves of the
// reference and the variants.
#include <algorithm>
#include <cstdio>

#include "replay/verify_cmd.h"
#include "replay/verify_resume.h"
#include "report/html.h"
#include "report/report.h"
#include "report/run_page.h"
#include "report/svg_chart.h"

namespace lockstep {
namespace {

constexpr int kWidth = 760, kLabel = 130, kRight = 120, kLane = 34, kTop = 40, kBottom = 46;
constexpr int kPlot = kWidth - kLabel - kRight;

std::string F(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

// How an interruption is drawn: a bar (stopped), a cross (SIGKILL), a diamond (crash point).
std::string InterruptionMark(const std::string& variant, const Interruption& in, double x, double y) {
  const std::string title =
      "<title>" +
      HtmlEscape(in.how + ", last step " + std::to_string(in.last_step) +
                 (in.during_checkpoint_write ? ", inside the checkpoint write" : "") +
                 (in.resumed_at > 0 ? "; resumed at step " + std::to_string(in.resumed_at) : "; started afresh")) +
      "</title>";
  const std::string stroke = in.during_checkpoint_write ? "#D55E00" : "#000";
  if (variant == "crash-points") {
    return "<path d=\"M" + F(x) + " " + F(y - 7) + "l6 7l-6 7l-6 -7z\" fill=\"#fff\" stroke=\"" + stroke +
           "\" stroke-width=\"1.8\">" + title + "</path>";
  }
  if (in.how.rfind("SIGKILL", 0) == 0) {
    return "<path d=\"M" + F(x - 5) + " " + F(y - 5) + "l10 10m0 -10l-10 10\" stroke=\"" + stroke +
           "\" stroke-width=\"2.2\">" + title + "</path>";
  }
  return "<rect x=\"" + F(x - 2) + "\" y=\"" + F(y - 8) + "\" width=\"4\" height=\"16\" fill=\"" + stroke + "\">" +
         title + "</rect>";
}

std::string Timeline(const VerifyResumeReport& r) {
  const int height = kTop + kLane * static_cast<int>(r.variants.size() + 1) + kBottom;
  const double span = std::max<double>(1.0, static_cast<double>(r.max_steps));
  const auto x_of = [&](double step) { return kLabel + kPlot * step / span; };
  const auto text = [](double x, double y, const std::string& s, const char* anchor, int size, const char* extra = "") {
    return "<text x=\"" + F(x) + "\" y=\"" + F(y) + "\" font-size=\"" + std::to_string(size) + "\" text-anchor=\"" +
           anchor + "\"" + extra + ">" + HtmlEscape(s) + "</text>";
  };
  std::string s = SvgOpen("timeline", kWidth, height, "verify-resume time line",
                          "One lane per run: the reference, then each variant's processes by step, how each ended, "
                          "and where the next resumed.");
  s += text(8, 18, "Time line: each lane's processes by step", "start", 14);
  const double axis_y = kTop + kLane * static_cast<double>(r.variants.size() + 1);
  for (double t : NiceTicks(0, span, 8)) {
    s += "<line x1=\"" + F(x_of(t)) + "\" x2=\"" + F(x_of(t)) + "\" y1=\"" + std::to_string(kTop - 6) + "\" y2=\"" +
         F(axis_y) + "\" stroke=\"#e4e4e4\"/>";
    s += text(x_of(t), axis_y + 14, std::to_string(static_cast<long long>(t)), "middle", 11);
  }
  s += text(kLabel + kPlot / 2.0, axis_y + 34, "step", "middle", 12);
  // The reference: one process, its saves as triangles.
  double y = kTop + kLane / 2.0;
  s += text(kLabel - 8, y + 4, "reference", "end", 12);
  s += "<line x1=\"" + F(x_of(0)) + "\" x2=\"" + F(x_of(span)) + "\" y1=\"" + F(y) + "\" y2=\"" + F(y) +
       "\" stroke=\"#555\" stroke-width=\"6\"/>";
  for (int64_t save : r.save_steps) {
    s += "<path d=\"M" + F(x_of(static_cast<double>(save))) + " " + F(y - 11) +
         "l4 -7h-8z\" fill=\"#555\"><title>save " + std::to_string(save) + "</title></path>";
  }
  for (size_t i = 0; i < r.variants.size(); ++i) {
    const VariantReport& v = r.variants[i];
    y = kTop + kLane * (static_cast<double>(i) + 1.5);
    const std::string color = SeriesColor(static_cast<int>(i) + 1);
    s += text(kLabel - 8, y + 4, v.name, "end", 12);
    double start = 0;
    for (const auto& in : v.interruptions) {
      const double end = static_cast<double>(in.last_step);
      s += "<line x1=\"" + F(x_of(start)) + "\" x2=\"" + F(x_of(end)) + "\" y1=\"" + F(y) + "\" y2=\"" + F(y) +
           "\" stroke=\"" + color + "\" stroke-width=\"6\" stroke-opacity=\"0.8\"/>";
      const double resumed = static_cast<double>(std::max<int64_t>(in.resumed_at, 0));
      if (resumed < end) {  // the steps the next process ran again, as an arc back
        s += "<path d=\"M" + F(x_of(end)) + " " + F(y - 4) + "Q" + F((x_of(end) + x_of(resumed)) / 2) + " " +
             F(y - 16) + " " + F(x_of(resumed)) + " " + F(y - 4) +
             "\" fill=\"none\" stroke=\"#444\" stroke-width=\"1\"/>";
      }
      s += InterruptionMark(v.name, in, x_of(end), y);
      start = resumed;
    }
    s += "<line x1=\"" + F(x_of(start)) + "\" x2=\"" + F(x_of(span)) + "\" y1=\"" + F(y) + "\" y2=\"" + F(y) +
         "\" stroke=\"" + color + "\" stroke-width=\"6\" stroke-opacity=\"0.8\"/>";
    if (v.diff.first_divergence) {
      const double x = x_of(static_cast<double>(v.diff.first_divergence->step));
      s += "<line x1=\"" + F(x) + "\" x2=\"" + F(x) + "\" y1=\"" + F(y - 12) + "\" y2=\"" + F(y + 12) +
           "\" stroke=\"#000\" stroke-width=\"2\"><title>" + HtmlEscape(v.diff.first_divergence->ToString()) +
           "</title></line>";
    }
    const std::string verdict = VariantVerdict(v);
    s += text(
        kLabel + kPlot + 10, y + 4, verdict, "start", 12,
        verdict == "BIT-EXACT" ? " font-weight=\"bold\" fill=\"#006B4F\"" : " font-weight=\"bold\" fill=\"#A33C00\"");
  }
  return "<figure>" + s +
         "</svg><figcaption>Bars: a process training; a bar mark: stopped; ×: SIGKILL; ◇: a crash "
         "at an I/O call of a save (orange when inside a checkpoint write); arcs: the steps run again after a resume; "
         "a black tick: the first divergence from the reference. Triangles: the reference's saves.</figcaption>"
         "</figure>\n";
}

std::string VariantsTable(const VerifyResumeReport& r) {
  HtmlTable t;
  t.header = {"variant", "interruptions", "step records equal", "first divergence", "seconds", "verdict"};
  for (const auto& v : r.variants) {
    std::string stops;
    for (const auto& in : v.interruptions) {
      stops += HtmlEscape(in.how) + ", last step " + std::to_string(in.last_step) +
               (in.during_checkpoint_write ? " (inside the checkpoint write)" : "") + "; " +
               (in.resumed_at > 0 ? "resumed at " + std::to_string(in.resumed_at) : std::string("started afresh"));
      for (const auto& l : in.leftovers) stops += "; left " + HtmlEscape(l);
      for (const auto& k : in.skipped) stops += "; skipped " + HtmlEscape(k);
      stops += "<br>";
    }
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.1f", v.seconds);
    t.rows.push_back({v.name, RawCell(stops.empty() ? "none" : stops),
                      std::to_string(v.diff.steps_matching) + " of " + std::to_string(v.diff.reference_steps),
                      v.diff.first_divergence ? v.diff.first_divergence->ToString() : "none", seconds,
                      VariantVerdict(v)});
  }
  return t.Render();
}

}  // namespace

Status RenderVerifyResumeReport(const VerifyResumeReport& r, std::string* html) {
  std::string body = "<h1>verify-resume report</h1>\n";
  std::string sub = std::to_string(r.max_steps) + " steps; reference " + r.reference_dir + "; work directory " +
                    r.work_dir + "; kill seed " + std::to_string(r.kill_seed) +
                    ". Made by lockstep " LOCKSTEP_VERSION ".";
  body += HtmlParagraph(sub, "sub");
  body += HtmlParagraph("verdict: " + VerifyResumeVerdict(r), r.bit_exact() ? "verdict ok" : "verdict bad");
  if (r.fault != "none") body += HtmlParagraph("FAULT INJECTED (testing only): " + r.fault, "verdict bad");
  body += HtmlSection("Variants", Timeline(r) + VariantsTable(r));
  // The curves: the reference and every variant as their directories hold them now.
  std::vector<ReportRun> runs(1);
  runs[0].label = "reference";
  std::string unread;
  if (!LoadRunChecked(r.reference_dir, &runs[0].side).ok()) {
    body += HtmlParagraph("The reference directory can no longer be read: no curves.", "note");
    *html = HtmlPage("verify-resume report", body);
    return Status::Ok();
  }
  for (size_t i = 0; i < r.variants.size(); ++i) {
    ReportRun run;
    run.label = r.variants[i].name;
    run.style = static_cast<int>(i) + 1;
    const Status st = LoadRunChecked(r.variants[i].dir, &run.side);
    if (!st.ok()) {
      unread += run.label + " (" + st.message() + ") ";
      continue;
    }
    run.diff = r.variants[i].diff;
    runs.push_back(std::move(run));
  }
  if (!unread.empty()) body += HtmlParagraph("Not drawn, unreadable now: " + unread, "note");
  body += ComparisonSection(runs) + CurvesSection(runs);
  *html = HtmlPage("verify-resume report", body);
  return Status::Ok();
}

Status RenderVerifyCmdReport(const VerifyCmdReport& r, const std::string& work_dir, std::string* html) {
  std::string body = "<h1>verify-resume --cmd report</h1>\n";
  body += HtmlParagraph(
      "Reference " + r.reference_dir + "; work directory " + work_dir + ". Made by lockstep " LOCKSTEP_VERSION ".",
      "sub");
  body += HtmlParagraph(
      std::string("verdict: ") + (r.bit_exact()      ? "BIT-EXACT: every counted resumed run is the uninterrupted run"
                                  : r.counted() == 0 ? "NO VERDICT: no variant's resume trained a step"
                                                     : "DIVERGED: a resumed run is not the uninterrupted run"),
      r.bit_exact() ? "verdict ok" : "verdict bad");
  HtmlTable t;
  t.header = {"variant", "interruption", "resumed from", "counted", "verdict"};
  std::vector<ReportRun> runs(1);
  runs[0].label = "reference";
  const Status st = LoadRunChecked(r.reference_dir, &runs[0].side);
  for (size_t i = 0; i < r.variants.size(); ++i) {
    const VerifyCmdVariant& v = r.variants[i];
    std::string counted = v.not_counted.empty() ? "yes" : "no: " + v.not_counted;
    for (const auto& why : v.not_resumable_because) counted += "; not resumable: " + why;
    const std::string verdict = !v.not_counted.empty()        ? "NOT COUNTED"
                                : !v.diff.compared_anything() ? "NOTHING COMPARED"
                                : v.diff.identical()          ? "BIT-EXACT"
                                                              : "DIVERGED";
    t.rows.push_back({v.name, v.how, v.resumed_from, counted, verdict});
    ReportRun run;
    run.label = v.name;
    run.style = static_cast<int>(i) + 1;
    if (st.ok() && LoadRunChecked(work_dir + "/" + v.name, &run.side).ok()) {
      run.diff = v.diff;
      runs.push_back(std::move(run));
    }
  }
  body += HtmlSection("Variants", t.Render());
  if (st.ok()) body += ComparisonSection(runs) + CurvesSection(runs);
  *html = HtmlPage("verify-resume --cmd report", body);
  return Status::Ok();
}

}  // namespace lockstep
