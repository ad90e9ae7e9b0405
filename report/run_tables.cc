// The tables of a runs page: the runs, each comparison's verdict, the settings that differ,
// where each ran, the checkpoint audit, the samples drawn, and the tensor diff of a shared
// checkpoint (a bar chart of max ULP per tensor).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include "diff/tensor_diff.h"
#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/step_record.h"
#include "inspect/audit.h"
#include "report/html.h"
#include "report/run_page.h"
#include "report/svg_chart.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

// Past this many tensors the bar chart shows those that differ most, and says how many more.
constexpr size_t kMaxBars = 60;
// A coverage table lists this many epochs at each end; whole epochs between fold into one row.
constexpr size_t kCoverageEdgeRows = 3;
// At most this many rows of a coverage table, lines of problems, or run-level problems in
// an audit: the rest are counted, and lockstep inspect lists every one.
constexpr size_t kMaxListedRows = 60;

HtmlCell Code(const std::string& text) { return RawCell("<code>" + HtmlEscape(text) + "</code>"); }

std::string Count(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string VerdictClass(const RunDiff& d) {
  if (!d.compared_anything()) return "verdict none";
  return d.identical() ? "verdict ok" : "verdict bad";
}

std::string DivergenceTable(const RunDiff& d) {
  const Divergence& f = *d.first_divergence;
  HtmlTable t;
  t.caption = "First divergence";
  t.header = {"step", "cause", "where", "field", "reference", "candidate"};
  std::string cause = f.cause;
  for (const auto& c : f.also) cause += ", also " + c;
  t.rows.push_back({std::to_string(f.step), cause, f.where, f.field, f.reference, f.candidate});
  std::string out = t.Render();
  const Aftermath& m = d.aftermath;
  std::string after;
  if (!m.losses.empty()) {
    after += "Largest |loss delta| after it: " + ShortNumber(m.max_abs_loss_delta) + "; beyond " +
             m.tolerance.ToString() + " " +
             (m.first_step_beyond ? "from step " + std::to_string(*m.first_step_beyond) : std::string("never")) + ". ";
  }
  after += m.nearest_checkpoint.empty() ? "No checkpoint of the candidate precedes it: nothing to replay from."
                                        : "Nearest checkpoint before it: " + m.nearest_checkpoint + ".";
  out += HtmlParagraph(after, "note");
  if (!m.replay_command.empty())
    out += "<p class=\"note\">Check it: <code>" + HtmlEscape(m.replay_command) + "</code></p>\n";
  return out;
}

// The newest checkpoint step both runs hold, if any.
std::optional<int64_t> NewestSharedCheckpoint(const RunSide& a, const RunSide& b) {
  for (auto it = a.checkpoint_steps.rbegin(); it != a.checkpoint_steps.rend(); ++it) {
    if (std::binary_search(b.checkpoint_steps.begin(), b.checkpoint_steps.end(), *it)) return *it;
  }
  return std::nullopt;
}

Bar TensorBar(const TensorDiff& t) {
  Bar b;
  b.label = t.name;
  if (t.status == "equal") return b.text = "equal", b;
  if (t.status != "differ") return b.text = t.status, b.style = 1, b;
  b.style = 1;
  const std::string of = " (" + std::to_string(t.differing) + " of " + std::to_string(t.numel) + " differ)";
  if (t.max_ulp == std::numeric_limits<uint64_t>::max()) {
    b.value = std::numeric_limits<double>::infinity();
    b.text = "NaN vs number" + of;
  } else {
    b.value = static_cast<double>(t.max_ulp);
    b.text = std::to_string(t.max_ulp) + " ulp" + of;
  }
  return b;
}

std::string TensorDiffOf(const ReportRun& reference, const ReportRun& run, const Tolerance& tolerance) {
  const auto step = NewestSharedCheckpoint(reference.side, run.side);
  if (!step) return HtmlParagraph(run.label + ": shares no checkpoint with " + reference.label + ".", "note");
  const std::string name = CheckpointDirName(*step);
  CheckpointDiff d;
  const Status st = DiffCheckpoints(reference.side.dir + "/" + name, run.side.dir + "/" + name, tolerance, &d);
  if (!st.ok()) return HtmlParagraph(run.label + ", " + name + ": not compared: " + st.message(), "note");
  if (d.tensors.empty()) return HtmlParagraph(run.label + ", " + name + ": no tensor was compared.", "note");
  std::vector<const TensorDiff*> shown;
  for (const auto& t : d.tensors) shown.push_back(&t);
  std::string more;
  if (shown.size() > kMaxBars) {
    // The tensors that differ most, then the file's order among those shown.
    std::stable_sort(shown.begin(), shown.end(), [](const TensorDiff* x, const TensorDiff* y) {
      return std::make_pair(!x->identical(), x->max_ulp) > std::make_pair(!y->identical(), y->max_ulp);
    });
    more = std::to_string(shown.size() - kMaxBars) + " more tensors are not drawn: the " + std::to_string(kMaxBars) +
           " shown differ most.";
    shown.resize(kMaxBars);
  }
  int64_t differing = 0;
  for (const auto& t : d.tensors) differing += !t.identical();
  BarChart chart;
  chart.id = "ulp-" + std::to_string(run.style);
  chart.title = run.label + " vs " + reference.label + ", " + name + ": max ULP per tensor";
  chart.x_label = "max distance in units in the last place of each tensor's dtype";
  for (const TensorDiff* t : shown) chart.bars.push_back(TensorBar(*t));
  std::string verdict = std::to_string(d.tensors.size()) + " tensors compared " +
                        (tolerance.any() ? "(tolerance " + tolerance.ToString() + ")" : std::string("bit for bit")) +
                        ", " + std::to_string(differing) + " differ";
  if (!d.state.empty()) verdict += "; " + std::to_string(d.state.size()) + " other saved values differ";
  return RenderBarChart(chart) + HtmlParagraph(verdict + ". " + more, "note");
}

}  // namespace

std::string DefaultRunLabel(const std::string& dir) {
  fs::path path = fs::path(dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // "runs/ref/"
  const std::string name = path.filename().string();
  return name.empty() || name == "." || name == ".." ? dir : name;
}

std::string RunsSection(const std::vector<ReportRun>& runs) {
  HtmlTable t;
  t.header = {"run", "directory", "kind", "drawn from", "steps", "checkpoints", "resumes"};
  for (const auto& run : runs) {
    const RunSide& s = run.side;
    int64_t resumes = 0;
    for (const auto& e : s.log.events) resumes += e.record.value(step_key::kKind, "") == event_key::kResume;
    const int64_t n =
        s.has_log ? static_cast<int64_t>(s.log.records.size()) : static_cast<int64_t>(s.log_history.size());
    std::string steps = s.has_log ? Count(n, "step record", "step records") : Count(n, "log entry", "log entries");
    if (s.has_log && s.log.truncated_tail) steps += " (the log ends inside a frame: " + s.log.tail_problem + ")";
    std::string checkpoints = std::to_string(s.checkpoint_steps.size());
    if (!s.checkpoint_steps.empty()) {
      checkpoints +=
          " (" + std::to_string(s.checkpoint_steps.front()) + ".." + std::to_string(s.checkpoint_steps.back()) + ")";
    }
    t.rows.push_back({run.label, Code(s.dir), s.kind, s.has_log ? "step log" : "log_history", steps, checkpoints,
                      s.has_log ? std::to_string(resumes) : "not recorded"});
  }
  return HtmlSection("Runs", t.Render());
}

std::string ComparisonSection(const std::vector<ReportRun>& runs) {
  std::string body;
  for (const auto& run : runs) {
    if (!run.diff && run.diff_error.empty()) continue;
    body += "<h3>" + HtmlEscape(run.label + " vs " + runs.front().label) + "</h3>\n";
    if (!run.diff) {
      body += HtmlParagraph("NOT COMPARED: " + run.diff_error + "; no verdict", "verdict none");
      continue;
    }
    const RunDiff& d = *run.diff;
    body += HtmlParagraph(RunDiffVerdict(d), VerdictClass(d));
    const bool entries = d.compared_by == "log_history";
    std::string compared =
        "Compared by " + d.compared_by + ": " +
        Count(d.steps_matching, entries ? "log entry" : "step", entries ? "log entries" : "steps") +
        " equal before any difference; " +
        Count(static_cast<int64_t>(d.checkpoints.size()), "checkpoint or final model", "checkpoints and final models") +
        " compared tensor by tensor.";
    if (d.compared_from_step > 1) compared += " Compared from step " + std::to_string(d.compared_from_step) + ".";
    if (!d.not_compared.empty()) compared += " Not compared: " + d.not_compared + ".";
    body += HtmlParagraph(compared, "note");
    for (const auto& n : d.notes) body += HtmlParagraph("Note: " + n, "note");
    if (d.first_divergence) body += DivergenceTable(d);
  }
  return body.empty() ? "" : HtmlSection("Comparisons with " + runs.front().label, body);
}

std::string SettingsSection(const std::vector<ReportRun>& runs) {
  std::string body;
  for (const auto& run : runs) {
    if (!run.diff) continue;
    if (run.diff->settings.empty()) {
      body += HtmlParagraph(run.label + ": no run-deciding setting differs from " + runs.front().label + ".", "note");
      continue;
    }
    HtmlTable t;
    t.caption = run.label + " vs " + runs.front().label + ": settings that differ (context, not the divergence)";
    t.header = {"setting", runs.front().label, run.label};
    for (const auto& s : run.diff->settings)
      t.rows.push_back({s.name, Abbreviate(s.reference), Abbreviate(s.candidate)});
    body += t.Render();
  }
  std::set<std::string> keys;
  for (const auto& run : runs) {
    for (const auto& [k, v] : run.side.environment) keys.insert(k);
  }
  HtmlTable where;
  where.caption = "Where each ran";
  where.header = {"field"};
  for (const auto& run : runs) where.header.push_back(run.label);
  for (const auto& k : keys) {
    std::vector<HtmlCell> row = {k};
    for (const auto& run : runs) {
      const auto it = run.side.environment.find(k);
      row.push_back(it == run.side.environment.end() ? "(not recorded)" : Abbreviate(it->second, 96));
    }
    where.rows.push_back(row);
  }
  body += keys.empty() ? HtmlParagraph("No run records where it ran.", "note") : where.Render();
  return HtmlSection("Settings and environment", body);
}

void AuditReportRun(ReportRun* run) {
  AuditOptions options;
  options.step_log = run->side.has_log ? &run->side.log : nullptr;
  AuditReport audit;
  const Status st = AuditRun(run->side.dir, options, &audit);
  if (st.ok()) {
    run->audit = std::move(audit);
  } else {
    run->audit_error = st.message();
  }
}

std::string AuditSection(const std::vector<ReportRun>& runs) {
  std::string body = HtmlParagraph(
      "The cheap checks of lockstep inspect: manifests, sizes, headers and the small JSON files. Checksums are not "
      "recomputed here (lockstep inspect --verify does that).",
      "note");
  for (const auto& run : runs) {
    if (!run.audit) {
      body += HtmlParagraph(run.label + ": not audited: " + run.audit_error, "note");
      continue;
    }
    const AuditReport& audit = *run.audit;
    HtmlTable t;
    t.caption = run.label + ": " + (audit.healthy() ? "no problem found by these checks" : "problems found") +
                "; latest resumable checkpoint: " + (audit.latest_resumable.empty() ? "none" : audit.latest_resumable);
    t.header = {"checkpoint", "layout", "status", "resumable", "problems and notes"};
    for (const auto& c : audit.checkpoints) {
      std::string text;
      for (const auto& p : c.problems) text += "<span class=\"status-bad\">" + HtmlEscape(p) + "</span><br>";
      for (const auto& n : c.notes) text += HtmlEscape(n) + "<br>";
      const bool bad = c.status != "complete";
      t.rows.push_back({c.name, c.layout,
                        RawCell(std::string("<span class=\"") + (bad ? "status-bad" : "status-ok") + "\">" +
                                HtmlEscape(c.status) + "</span>"),
                        c.resumable ? "yes" : "no", RawCell(text)});
    }
    for (size_t i = 0; i < audit.problems.size() && i < kMaxListedRows; ++i) {
      t.rows.push_back({"(run)", "", "problem", "", audit.problems[i]});
    }
    if (audit.problems.size() > kMaxListedRows) {
      t.rows.push_back({"(run)", "", "problem", "",
                        std::to_string(audit.problems.size() - kMaxListedRows) +
                            " more problems (lockstep inspect lists every one)"});
    }
    body += audit.checkpoints.empty() && audit.problems.empty()
                ? HtmlParagraph(run.label + ": no checkpoint, no problem.", "note")
                : t.Render();
  }
  return HtmlSection("Checkpoint audit", body);
}

std::string CoverageSection(const std::vector<ReportRun>& runs) {
  std::string body;
  for (const auto& run : runs) {
    const json c = run.audit ? run.audit->findings.value("coverage", json()) : json();
    if (!run.side.has_log || !c.is_object()) {
      body += HtmlParagraph(run.label + ": no step log, so no sample ids: coverage unknown.", "note");
      continue;
    }
    if (c.value("known", false) != true) {
      body += HtmlParagraph(run.label + ": coverage unknown: " + c.value("why", std::string()), "note");
      continue;
    }
    const json size = c.value("dataset_size", json());
    HtmlTable t;
    t.caption = run.label + ": samples drawn per epoch (dataset " +
                (size.is_number() ? size.dump() : std::string("size unknown")) + ")";
    t.header = {"epoch", "steps", "drawn", "distinct", "repeated", "never drawn", "complete"};
    const auto number = [](const json& e, const char* key) {
      const json v = e.value(key, json());
      return v.is_number() ? v.dump() : std::string("unknown");
    };
    // A long run has thousands of epochs: every epoch that is not plainly whole (a repeat,
    // a sample never drawn, an unknown count, the last) is listed, with the first and last
    // few; the plainly whole ones between are one row, their counts summed.
    const json epochs = c.value("epochs", json::array());
    const auto plain = [&](const json& e) {
      return e.value("complete", false) && IntField(e, "repeated", -1) == 0 && IntField(e, "never", -1) == 0;
    };
    int64_t unlisted = 0;  // epochs not whole past kMaxListedRows rows
    int64_t folded = 0, folded_drawn = 0, folded_first = 0, folded_last = 0, folded_from = 0, folded_to = 0;
    const auto flush = [&] {
      if (folded == 0) return;
      t.rows.push_back(
          {std::to_string(folded_from) + ".." + std::to_string(folded_to) + " (" + std::to_string(folded) + " epochs)",
           std::to_string(folded_first) + ".." + std::to_string(folded_last), std::to_string(folded_drawn),
           "each: every sample", "0", "0", "yes"});
      folded = folded_drawn = 0;
    };
    for (size_t i = 0; i < epochs.size(); ++i) {
      const json& e = epochs[i];
      const bool edge = i < kCoverageEdgeRows || i + kCoverageEdgeRows >= epochs.size();
      if (epochs.size() > 2 * kCoverageEdgeRows + 1 && !edge && plain(e)) {
        if (folded++ == 0) folded_from = IntField(e, "epoch", 0), folded_first = IntField(e, "first_step", 0);
        folded_to = IntField(e, "epoch", 0);
        folded_last = IntField(e, "last_step", 0);
        folded_drawn += IntField(e, "drawn", 0);
        continue;
      }
      flush();
      if (t.rows.size() >= kMaxListedRows && !edge) {
        ++unlisted;
        continue;
      }
      t.rows.push_back({number(e, "epoch"), number(e, "first_step") + ".." + number(e, "last_step"), number(e, "drawn"),
                        number(e, "distinct"), number(e, "repeated"), number(e, "never"),
                        e.value("complete", false) ? "yes" : "no (the run ends in it)"});
    }
    flush();
    body += t.Render();
    if (unlisted > 0) {
      body +=
          HtmlParagraph(run.label + ": " + std::to_string(unlisted) +
                            " more epochs with a repeat, a gap or an unknown count are not listed (lockstep inspect " +
                            run.side.dir + " --json lists every epoch).",
                        "verdict bad");
    }
    const auto paragraphs = [&](const json& lines, const char* css) {
      size_t shown = 0;
      for (const auto& line : lines) {
        if (shown++ == kMaxListedRows) {
          body += HtmlParagraph(run.label + ": " + std::to_string(lines.size() - kMaxListedRows) + " more.", css);
          break;
        }
        if (line.is_string()) body += HtmlParagraph(run.label + ": " + line.get<std::string>(), css);
      }
    };
    paragraphs(c.value("problems", json::array()), "verdict bad");
    paragraphs(c.value("notes", json::array()), "note");
  }
  return HtmlSection("Sample coverage", body);
}

std::string TensorDiffSection(const std::vector<ReportRun>& runs, const Tolerance& tolerance) {
  std::string body;
  for (size_t i = 1; i < runs.size(); ++i) body += TensorDiffOf(runs.front(), runs[i], tolerance);
  return body.empty() ? "" : HtmlSection("Tensor diff of the newest shared checkpoint", body);
}

}  // namespace lockstep
