// RunDiff as JSON (the contract scripts read) and as text (the verdict first, then tables).
#include <cstdio>

#include "diff/run_divergence.h"
#include "formats/json_file.h"
#include "formats/step_record.h"
#include "inspect/coverage.h"

using nlohmann::json;

namespace lockstep {
namespace {

json SettingsJson(const std::vector<SettingDifference>& list) {
  json out = json::array();
  for (const auto& s : list) out.push_back({{"name", s.name}, {"reference", s.reference}, {"candidate", s.candidate}});
  return out;
}

void SettingsTable(const char* title, const std::vector<SettingDifference>& list, std::string* out) {
  if (list.empty()) return;
  *out += std::string("\n") + title + "\n";
  char line[512];
  std::snprintf(line, sizeof(line), "  %-40s %-24s %s\n", "name", "reference", "candidate");
  *out += line;
  for (const auto& s : list) {
    std::snprintf(line, sizeof(line), "  %-40s %-24s %s\n", s.name.c_str(), Abbreviate(s.reference, 24).c_str(),
                  Abbreviate(s.candidate, 24).c_str());
    *out += line;
  }
}

// A resume of the candidate that changed its settings, which its step log's header (the
// settings compared above) still states as they were: "resumed after step 30 from
// checkpoint-30 with --resume-override: learning_rate 5e-05 -> 0.001". "" for a plain resume.
std::string ChangedResumeLine(const json& event) {
  namespace k = event_key;
  const json changes = event.value(k::kChangedSettings, json::array());
  const bool overridden = event.value(step_key::kResumeOverride, false) == true;
  if (!overridden && (!changes.is_array() || changes.empty())) return "";
  std::string line = "  candidate resumed after step " + DumpJson(event.value(k::kAfterStep, json())) + " from " +
                     event.value(k::kCheckpoint, std::string("?")) +
                     (overridden ? " with --resume-override (every later record is marked)" : " with changed settings");
  std::string sep = ": ";
  for (const auto& c : changes.is_array() ? changes : json::array()) {
    if (!c.is_object()) continue;
    line += sep + c.value("setting", std::string("?")) + " " + Abbreviate(c.value("checkpoint", json()), 24) + " -> " +
            Abbreviate(c.value("now", json()), 24);
    sep = ", ";
  }
  return line + "\n";
}

}  // namespace

json RunDiffJson(const RunDiff& d) {
  json first;
  if (d.first_divergence) {
    first = d.first_divergence->ToJson();
    if (IsNumericOutcome(d.first_divergence->cause)) first["numerics"] = d.numerics;
  }
  json aftermath;
  if (d.first_divergence) {
    const Aftermath& m = d.aftermath;
    json losses = json::array();
    for (const auto& l : m.losses) {
      losses.push_back(
          {{"step", l.step}, {"reference", l.reference}, {"candidate", l.candidate}, {"delta", l.delta()}});
    }
    aftermath = {{"loss", losses},
                 {"max_abs_loss_delta", m.max_abs_loss_delta},
                 {"tolerance", m.tolerance.ToJson()},
                 {"first_step_beyond_tolerance", m.first_step_beyond ? json(*m.first_step_beyond) : json()},
                 {"nearest_checkpoint", m.nearest_checkpoint.empty() ? json() : json(m.nearest_checkpoint)},
                 {"replay_command", m.replay_command.empty() ? json() : json(m.replay_command)}};
  }
  json checkpoints = json::array(), results = json::array();
  for (const auto& c : d.checkpoints) {
    checkpoints.push_back({{"name", c.name},
                           {"identical", c.identical},
                           {"within_tolerance", c.within_tolerance},
                           {"tensors_compared", c.tensors_compared},
                           {"tensors_differing", c.tensors_differing},
                           {"first_difference", c.first ? c.first->ToJson() : json()}});
  }
  for (const auto& r : d.results) results.push_back(r.ToJson());
  return {
      {"identical", d.identical()},
      {"compared_anything", d.compared_anything()},
      {"within_tolerance", d.within_tolerance()},
      {"tolerance", d.tolerance.ToJson()},
      {"kind_a", d.kind_a},
      {"kind_b", d.kind_b},
      {"compared_by", d.compared_by},
      {"reference_steps", d.reference_steps},
      {"candidate_steps", d.candidate_steps},
      {"steps_matching", d.steps_matching},
      {"first_divergence", first},
      {"first_outside_tolerance", d.first_outside_tolerance ? json(*d.first_outside_tolerance) : json()},
      {"compared_from_step", d.compared_from_step},
      {"settings_differences", SettingsJson(d.settings)},
      {"environment", SettingsJson(d.environment)},
      {"aftermath", aftermath},
      {"checkpoints", checkpoints},
      {"results", results},
      {"notes", d.notes},
      {"not_compared", d.not_compared.empty() ? json() : json(d.not_compared)},
      {"coverage", d.coverage_a.is_null() ? json() : json{{"reference", d.coverage_a}, {"candidate", d.coverage_b}}},
      {"candidate_resumes", d.candidate_resumes}};
}

std::string RunDiffVerdict(const RunDiff& d) {
  if (!d.compared_anything()) {
    return "NOTHING COMPARED: the runs share no step record, log entry or checkpoint; no verdict";
  }
  if (d.identical()) {
    // A run that records no steps (accelerate's, Lightning's, DCP's folders) is its checkpoints.
    const std::string compared =
        d.steps_matching == 0
            ? std::to_string(d.checkpoints.size()) + " checkpoints bit for bit (neither run records its steps)"
            : std::to_string(d.steps_matching) + (d.compared_by == "log_history" ? " log entries" : " steps") +
                  " bit for bit (" + d.compared_by + ")";
    if (!d.not_compared.empty()) {
      return "IDENTICAL IN WHAT BOTH RECORD: " + compared + " and " + std::to_string(d.checkpoints.size()) +
             " checkpoints; not compared: " + d.not_compared;
    }
    return "IDENTICAL: " + compared;
  }
  const Divergence& f = *d.first_divergence;
  std::string v = d.within_tolerance() ? "WITHIN TOLERANCE: the runs part" : "DIFFERENT: the runs part";
  // Checkpoints that no step number names (accelerate's checkpoint_<i>) part where they differ.
  v += (f.step <= 0 && d.steps_matching == 0 ? " in " + f.where : " at step " + std::to_string(f.step)) + ", cause " +
       f.cause + " (" + f.field + ")";
  for (const auto& c : f.also) v += ", also " + c;
  if (d.first_outside_tolerance && d.tolerance.any()) {
    v += "; first outside the tolerance at step " + std::to_string(*d.first_outside_tolerance);
  }
  return v;
}

std::string RunDiffText(const RunDiff& d, const std::string& reference, const std::string& candidate) {
  std::string out = RunDiffVerdict(d) + "\n";
  // A side's count is of its step records when it has a step log, else of log_history.
  const auto count = [](const std::string& kind, int64_t n) {
    if (kind == "run") return std::string("its checkpoints alone: no step log or log_history");
    const bool steps = kind == "lockstep run";
    return std::to_string(n) + (steps ? (n == 1 ? " step" : " steps") : (n == 1 ? " log entry" : " log entries"));
  };
  out += "  reference " + reference + " (" + d.kind_a + ", " + count(d.kind_a, d.reference_steps) + ")\n";
  out += "  candidate " + candidate + " (" + d.kind_b + ", " + count(d.kind_b, d.candidate_steps) + ")\n";
  if (d.compared_from_step > 1) {
    out += "  compared from step " + std::to_string(d.compared_from_step) +
           ": a step log begins there (a run resumed into a new directory)\n";
  }
  for (const auto& resume : d.candidate_resumes) out += ChangedResumeLine(resume);
  for (const auto& note : d.notes) out += "  note: " + note + "\n";
  SettingsTable("Settings that differ (context, not the divergence):", d.settings, &out);
  SettingsTable("Where each ran:", d.environment, &out);
  if (d.first_divergence) {
    const Divergence& f = *d.first_divergence;
    out +=
        "\nFirst divergence: " + (d.steps_matching == 0 && f.step <= 0 ? f.where : "step " + std::to_string(f.step)) +
        ", cause " + f.cause;
    for (const auto& c : f.also) out += ", also " + c;
    out += "\n";
    out += "  " + f.where + ": " + f.field + "\n    reference " + f.reference + "\n    candidate " + f.candidate + "\n";
    // Named: a range-for over items() of a temporary would outlive the temporary.
    const json numerics = IsNumericOutcome(f.cause) && d.numerics.is_object() ? d.numerics : json::object();
    for (const auto& [name, n] : numerics.items()) {
      out += "  " + name + ": " + DumpJson(n.value("ulp_float32", json())) + " ulp (float32), relative " +
             DumpJson(n.value("relative", json())) + "\n";
    }
    const Aftermath& m = d.aftermath;
    if (!m.losses.empty()) {
      out += "\nAftermath (loss, candidate - reference):\n";
      char line[256];
      for (const auto& l : m.losses) {
        std::snprintf(line, sizeof(line), "  step %-8lld %-14.9g %-14.9g %+.3g\n", static_cast<long long>(l.step),
                      l.reference, l.candidate, l.delta());
        out += line;
      }
      std::snprintf(line, sizeof(line), "  max |delta| %.3g; beyond %s %s\n", m.max_abs_loss_delta,
                    m.tolerance.ToString().c_str(),
                    m.first_step_beyond ? ("from step " + std::to_string(*m.first_step_beyond)).c_str() : "never");
      out += line;
    }
    if (!m.nearest_checkpoint.empty()) {
      out += "  nearest checkpoint before it: " + m.nearest_checkpoint + "\n";
    } else if (f.step > 0) {
      out += "  no checkpoint of the candidate precedes step " + std::to_string(f.step) + ": nothing to replay from\n";
    }
    if (!m.replay_command.empty()) out += "  check it: " + m.replay_command + "\n";
  }
  if (!d.coverage_a.is_null()) {
    out += "\nSamples each run drew (the runs part on their data):\n  reference\n" + CoverageText(d.coverage_a) +
           "  candidate\n" + CoverageText(d.coverage_b);
  }
  if (!d.checkpoints.empty()) {
    out += "\nCheckpoints:\n";
    const size_t n = d.checkpoints.size();
    for (size_t i = 0; i < n; ++i) {
      const CheckpointSummary& c = d.checkpoints[i];
      if (n > 6 && i == 3) out += "  ... " + std::to_string(n - 4) + " more (--json lists every one)\n";
      if (n > 6 && i >= 3 && i + 1 < n) continue;
      out += "  " + c.name + ": " +
             (c.identical ? "identical"
                          : std::to_string(c.tensors_differing) + " tensors differ" +
                                (c.within_tolerance && d.tolerance.any() ? " (within tolerance)" : "") +
                                (c.first ? "; first " + c.first->where + " " + c.first->field +
                                               (c.first->cause == cause::kWeights
                                                    ? ""
                                                    : " (" + c.first->cause + ": reference " + c.first->reference +
                                                          ", candidate " + c.first->candidate + ")")
                                         : "")) +
             "\n";
    }
  }
  for (const auto& r : d.results)
    out += "  " + r.where + ": " + r.field + " (" + r.reference + " vs " + r.candidate + ")\n";
  return out;
}

}  // namespace lockstep
