// The curves of a runs page: loss, learning rate and grad norm by step for every run, with
// its resumes and checkpoints, every candidate's first divergence, and the loss delta after it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "diff/step_compare.h"
#include "formats/json_file.h"
#include "formats/step_record.h"
#include "report/html.h"
#include "report/run_page.h"
#include "report/svg_chart.h"

using nlohmann::json;

namespace lockstep {
namespace {

struct RunCurves {
  std::vector<Point> loss, eval_loss, lr, grad_norm;
};

double NumberField(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

RunCurves CurvesOf(const RunSide& side) {
  RunCurves c;
  if (side.has_log) {
    for (const auto& r : side.log.records) {  // the floats as their bits say (a NaN has no JSON number)
      c.loss.push_back({r.step, r.loss});
      c.lr.push_back({r.step, r.lr});
      c.grad_norm.push_back({r.step, r.grad_norm});
    }
  }
  for (const auto& e : side.log_history) {
    if (!e.is_object()) continue;
    const int64_t step = IntField(e, "step", 0);
    if (e.contains("eval_loss")) c.eval_loss.push_back({step, NumberField(e, "eval_loss")});
    if (side.has_log) continue;
    if (e.contains("loss")) c.loss.push_back({step, NumberField(e, "loss")});
    if (e.contains("learning_rate")) c.lr.push_back({step, NumberField(e, "learning_rate")});
    if (e.contains("grad_norm")) c.grad_norm.push_back({step, NumberField(e, "grad_norm")});
  }
  for (auto* v : {&c.loss, &c.eval_loss, &c.lr, &c.grad_norm}) {
    std::stable_sort(v->begin(), v->end(), [](const Point& a, const Point& b) { return a.step < b.step; });
  }
  return c;
}

std::vector<ChartMark> MarksOf(const std::vector<ReportRun>& runs) {
  std::vector<ChartMark> marks;
  for (const auto& run : runs) {
    for (int64_t step : run.side.checkpoint_steps) {
      marks.push_back(
          {ChartMark::Kind::kCheckpoint, step, run.label + ": checkpoint-" + std::to_string(step), run.style});
    }
    for (const auto& e : run.side.log.events) {
      if (e.record.value(step_key::kKind, "") != event_key::kResume) continue;
      const int64_t after = IntField(e.record, event_key::kAfterStep, 0);
      std::string label = run.label + " resumed after step " + std::to_string(after);
      const json& from = e.record.value(event_key::kCheckpoint, json());
      if (from.is_string()) label += " from " + from.get<std::string>();
      if (e.record.contains(event_key::kFaultInjected))
        label += " (fault injected: " + Abbreviate(e.record[event_key::kFaultInjected]) + ")";
      marks.push_back({ChartMark::Kind::kResume, after, label, run.style});
    }
  }
  for (const auto& run : runs) {
    if (!run.diff || !run.diff->first_divergence) continue;
    const Divergence& f = *run.diff->first_divergence;
    marks.push_back({ChartMark::Kind::kDivergence, f.step,
                     run.label + " parts at step " + std::to_string(f.step) + ": " + f.cause, run.style});
  }
  return marks;
}

// |candidate - reference| loss at each step both draw, from the candidate's divergence on;
// equal steps are counted apart (a log scale has no 0). Both curves are sorted by step.
std::vector<Point> AbsLossDelta(const std::vector<Point>& reference, const std::vector<Point>& candidate, int64_t from,
                                int64_t* equal) {
  std::vector<Point> out;
  *equal = 0;
  auto r = reference.begin();
  for (auto c = std::lower_bound(candidate.begin(), candidate.end(), from,
                                 [](const Point&p, int64_t step) { return p.step < step; });
       c != candidate.end(); ++c) {
    while (r != reference.end() && r->step < c->step) ++r;
    if (r == reference.end()) break;
    if (r->step != c->step) continue;
    const double d = std::fabs(c->value - r->value);
    if (d == 0) {
      ++*equal;
    } else {
      out.push_back({c->step, d});
    }
  }
  return out;
}

// What a run's grad_norm is: the step log's header says (the HF callback records it after
// HF clipped the gradients); Lockstep's trainer and the Trainer's own log_history record the
// norm clip_grad_norm_ returns, before clipping; a loop's own Recorder, what it passed.
std::string GradNormMeasured(const RunSide& side) {
  if (!side.has_log) return "before clipping";
  const nlohmann::json& h = side.log.header;
  if (h.contains("grad_norm_measured") && h["grad_norm_measured"].is_string()) return h["grad_norm_measured"];
  if (h.contains("lockstep_version")) return "before clipping";
  return "as the loop recorded it";
}

// "Gradient norm (before clipping)", or each run's when they differ.
std::string GradNormTitle(const std::vector<ReportRun>& runs) {
  std::set<std::string> kinds;
  for (const auto& run : runs) kinds.insert(GradNormMeasured(run.side));
  if (kinds.size() == 1) return "Gradient norm (" + *kinds.begin() + ")";
  std::string each;
  for (const auto& run : runs) each += (each.empty() ? "" : "; ") + run.label + ": " + GradNormMeasured(run.side);
  return "Gradient norm (" + each + ")";
}

}  // namespace

std::string CurvesSection(const std::vector<ReportRun>& runs) {
  std::vector<RunCurves> curves;
  int64_t x_min = std::numeric_limits<int64_t>::max(), x_max = std::numeric_limits<int64_t>::min();
  for (const auto& run : runs) {
    curves.push_back(CurvesOf(run.side));
    for (const auto* v : {&curves.back().loss, &curves.back().eval_loss, &curves.back().lr}) {
      if (v->empty()) continue;
      x_min = std::min(x_min, v->front().step);
      x_max = std::max(x_max, v->back().step);
    }
    for (int64_t s : run.side.checkpoint_steps) x_max = std::max(x_max, s);
  }
  if (x_min > x_max)
    return HtmlSection("Curves",
                       HtmlParagraph("No run records a loss, learning rate or grad norm: nothing to draw.", "note"));
  const std::vector<ChartMark> marks = MarksOf(runs);
  std::vector<std::string> labels;
  std::vector<int> styles;
  for (const auto& run : runs) labels.push_back(run.label), styles.push_back(run.style);
  std::string body = RenderLegend(labels, styles);
  body += HtmlParagraph(
      "Triangles on the step axis: checkpoints. Dashed lines: resumes. A solid black line: where a "
      "run first parts from " +
          runs.front().label + ", with its cause. Hover for details.",
      "note");
  const auto chart = [&](const char* id, const char* title, const char* y_label, std::vector<Point> RunCurves::*member,
                         bool with_eval, LineChart::Scale scale, bool focus_settled = false) {
    LineChart c;
    c.y_scale = scale;
    c.focus_settled = focus_settled;
    c.id = id;
    c.title = title;
    c.y_label = y_label;
    c.x_min = x_min;
    c.x_max = x_max;
    c.marks = marks;
    bool any = false;
    for (size_t i = 0; i < runs.size(); ++i) {
      any = any || !(curves[i].*member).empty();
      c.lines.push_back({runs[i].label, curves[i].*member, runs[i].style, false});
      if (with_eval && !curves[i].eval_loss.empty()) {
        any = true;
        c.lines.push_back({runs[i].label + " eval loss", curves[i].eval_loss, runs[i].style, true});
      }
    }
    return any ? RenderLineChart(c) : HtmlParagraph(std::string(title) + ": no run records it.", "note");
  };
  // A schedule reads best on a linear scale (a decay to 0 has no log); loss and grad norm
  // take a log scale when they span 20x or more.
  body += chart("loss", "Loss (lines: training; dots: evaluation)", "loss", &RunCurves::loss, true,
                LineChart::Scale::kAuto, /*focus_settled=*/true);
  body += chart("lr", "Learning rate", "learning rate", &RunCurves::lr, false, LineChart::Scale::kLinear);
  body += chart("grad-norm", GradNormTitle(runs).c_str(), "grad norm", &RunCurves::grad_norm, false,
                LineChart::Scale::kAuto);

  LineChart delta;
  delta.id = "loss-delta";
  delta.title = "Loss difference after the divergence, |candidate - " + runs.front().label + "|";
  delta.y_label = "|loss delta|";
  delta.y_scale = LineChart::Scale::kLog;
  delta.x_min = x_min;
  delta.x_max = x_max;
  std::string notes;
  for (size_t i = 1; i < runs.size(); ++i) {
    const ReportRun& run = runs[i];
    if (!run.diff || !run.diff->first_divergence) continue;
    int64_t equal = 0;
    delta.lines.push_back({run.label,
                           AbsLossDelta(curves[0].loss, curves[i].loss, run.diff->first_divergence->step, &equal),
                           run.style, false});
    delta.marks.push_back({ChartMark::Kind::kDivergence, run.diff->first_divergence->step,
                           run.label + ": " + run.diff->first_divergence->cause, run.style});
    if (equal > 0) {
      notes += run.label + ": " + std::to_string(equal) + (equal == 1 ? " step" : " steps") +
               " from the divergence on " + (equal == 1 ? "has" : "have") +
               " the same loss as the reference (a delta of 0, which a log scale cannot show). ";
    }
  }
  const bool any_delta =
      std::any_of(delta.lines.begin(), delta.lines.end(), [](const ChartLine& l) { return !l.points.empty(); });
  if (any_delta) {
    body += RenderLineChart(delta);
    if (!notes.empty()) body += HtmlParagraph(notes, "note");
  } else if (!delta.lines.empty()) {
    body += HtmlParagraph("Loss difference after the divergence: none to draw. " + notes +
                              "The runs part in what the step records or checkpoints hold, never in the loss itself.",
                          "note");
  }
  return HtmlSection("Curves", body);
}

}  // namespace lockstep
