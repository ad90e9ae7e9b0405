#include "inspect/step_log_view.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "formats/json_file.h"
#include "formats/step_log.h"

using nlohmann::json;

namespace lockstep {
namespace {

bool ParseStep(const std::string& text, int64_t* out) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::strtoll(text.c_str(), nullptr, 10);
  return *out >= 1;
}

}  // namespace

json OverrideRanges(const std::vector<StepRecord>& records) {
  json ranges = json::array();
  for (const auto& r : records) {
    if (!r.resume_override) continue;
    const int64_t s = r.step;
    if (!ranges.empty() && ranges.back()[1].get<int64_t>() + 1 == s)
      ranges.back()[1] = s;
    else
      ranges.push_back({s, s});
  }
  return ranges;
}

namespace {

const json& Field(const json& j, const char* key) { return FieldOrNull(j, key); }

// A generator state as its digest's first 12 hex digits: a table cell, not 5 KB of base64.
std::string StateCell(const json& v) {
  const json& digest = Field(v, step_key::kStateDigest);
  if (digest.is_string()) return digest.get<std::string>().substr(0, 12);
  return v.is_binary() ? "(raw " + std::to_string(v.get_binary().size()) + " B)" : "";
}

const size_t kMaxCell = 60;

std::string Cell(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.9g", v.get<double>());
    return buf;
  }
  if (v.is_string()) return v.get<std::string>();
  std::string text;
  if (v.is_object() && !StateCell(v).empty()) {
    text = StateCell(v);
  } else if (v.is_object()) {  // {"cpu": {...}, "sampler": {...}}: one digest per generator
    for (const auto& [k, sub] : v.items()) {
      const std::string state = StateCell(sub);
      if (state.empty()) {
        text.clear();
        break;
      }
      text += (text.empty() ? "" : " ") + k + ":" + state;
    }
  }
  if (text.empty()) text = DumpJson(v);
  return text.size() <= kMaxCell ? text : text.substr(0, kMaxCell - 3) + "...";
}

// InvalidArgument for a --fields name no record has, listing those that exist.
Status CheckFields(const std::string& path, const std::vector<StepRecord>& records,
                   const std::vector<std::string>& fields) {
  std::set<std::string> present;
  for (const auto& f : fields) {
    for (const auto& r : records) {
      if (!StepFieldJson(r, f).is_null()) {
        present.insert(f);
        break;
      }
    }
  }
  if (std::all_of(fields.begin(), fields.end(), [&](const std::string& f) { return present.count(f); })) {
    return Status::Ok();
  }
  for (const auto& r : records) {
    for (const auto& k : StepFieldNames(r)) present.insert(k);
  }
  for (const auto& f : fields) {
    if (records.empty() || present.count(f)) continue;
    std::string known;
    for (const auto& k : present) known += (known.empty() ? "" : ", ") + k;
    return Status::InvalidArgument("--fields " + f + ": no record of " + path + " has that field (it has: " + known +
                                   ")");
  }
  return Status::Ok();
}

}  // namespace

Status ParseStepRange(const std::string& text, StepLogViewOptions* o) {
  const size_t colon = text.find(':');
  const std::string a = text.substr(0, colon), b = colon == std::string::npos ? a : text.substr(colon + 1);
  bool ok = true;
  o->first_step = 1;
  o->last_step = -1;
  if (!a.empty()) ok = ok && ParseStep(a, &o->first_step);
  if (!b.empty()) ok = ok && ParseStep(b, &o->last_step);
  if (!ok || (o->last_step != -1 && o->last_step < o->first_step) || text.empty()) {
    return Status::InvalidArgument("--steps " + text + ": expected A:B with 1 <= A <= B (A:, :B and A also work)");
  }
  o->range_given = true;
  return Status::Ok();
}

Status ViewStepLog(const std::string& path, const StepLogViewOptions& options, json* report) {
  StepLogContents log;
  LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(path, &log));
  const auto& records = log.records;
  LOCKSTEP_RETURN_IF_ERROR(CheckFields(path, records, options.fields));
  json resumes = json::array();
  for (const auto& e : log.events) {
    json r = e.record;
    r["steps_before"] = e.steps_before;
    resumes.push_back(r);
  }
  json rows = json::array();
  auto row = [&](const StepRecord& r) {
    json out = {{step_key::kStep, r.step}};
    for (const auto& f : options.fields) out[f] = StepFieldJson(r, f);
    rows.push_back(out);
  };
  const int64_t n = static_cast<int64_t>(records.size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t step = records[i].step;
    const bool in = options.range_given
                        ? step >= options.first_step && (options.last_step == -1 || step <= options.last_step)
                        : (n <= options.max_rows || i < options.max_rows / 2 || i >= n - options.max_rows / 2);
    if (in) row(records[i]);
  }
  if (options.range_given && rows.empty()) {
    return Status::InvalidArgument(
        "--steps " + std::to_string(options.first_step) + ":" +
        (options.last_step == -1 ? "" : std::to_string(options.last_step)) + ": " + path +
        (n ? " has steps " + std::to_string(records.front().step) + ".." + std::to_string(records.back().step)
           : " has no step records"));
  }
  *report = {{"path", path},
             {"kind", "lockstep step log"},
             {"header", log.header},
             {"records", n},
             {"first_step", n ? json(records.front().step) : json()},
             {"last_step", n ? json(records.back().step) : json()},
             {"resumes", resumes},
             {"override_steps", OverrideRanges(records)},
             {"truncated_tail", log.truncated_tail},
             {"file_bytes", log.file_bytes},
             {"fields", options.fields},
             {"rows", rows},
             {"rows_elided", !options.range_given && n > options.max_rows}};
  if (log.truncated_tail) (*report)["tail_problem"] = log.tail_problem;
  return Status::Ok();
}

static std::string StepLogViewTextUnchecked(const json& r) {
  const json& h = r["header"];
  std::string out =
      "step log " + Cell(r["path"]) + ": " + Cell(r["records"]) + " steps (" + Cell(r["first_step"]) + ".." +
      Cell(r["last_step"]) + "), " + std::to_string(r["resumes"].size()) +
      (r["resumes"].size() == 1 ? " resume" : " resumes") +
      (r["truncated_tail"].get<bool>() ? ", TRUNCATED TAIL: " + Cell(r.value("tail_problem", json())) : "") + "\n";
  const json& writer = Field(h, kStepLogRecorderKey);
  out += "  written by " + (writer.is_null() ? "lockstep " + Cell(Field(h, "lockstep_version")) : Cell(writer)) +
         ", torch " + Cell(Field(h, "torch_version")) + ", device " + Cell(Field(h, "device")) + ", " +
         Cell(Field(h, "num_threads")) + " threads, model " + Cell(Field(Field(h, "model"), "name")) + ", plan " +
         Cell(Field(h, "plan")) + "\n";
  for (const auto& e : r["resumes"]) {
    out += "  " + Cell(Field(e, "kind")) + " after step " + Cell(Field(e, event_key::kAfterStep)) + " from " +
           Cell(Field(e, event_key::kCheckpoint)) +
           (Field(e, event_key::kWorldSize).is_object()
                ? " at world size " + Cell(Field(Field(e, event_key::kWorldSize), event_key::kWorldSizeTo)) +
                      " (saved by " + Cell(Field(Field(e, event_key::kWorldSize), event_key::kWorldSizeFrom)) + ")"
                : "") +
           (Field(e, step_key::kResumeOverride) == true ? " WITH --resume-override" : "") + "\n";
    const json& changed = Field(e, event_key::kChangedSettings);
    for (const auto& c : changed.is_array() ? changed : json::array()) out += "      changed " + DumpJson(c) + "\n";
  }
  for (const auto& range : r["override_steps"]) {
    out += "  steps " + Cell(range[0]) + ".." + Cell(range[1]) + " are marked resume_override (a different run)\n";
  }
  char line[256];
  std::string head = "\n  " + std::string(8 - std::min<size_t>(8, 4), ' ') + "step";
  for (const auto& f : r["fields"]) {
    std::snprintf(line, sizeof(line), " %16s", f.get<std::string>().c_str());
    head += line;
  }
  out += head + "\n";
  int64_t previous = 0;
  for (const auto& row : r["rows"]) {
    const int64_t step = row["step"].is_number() ? row["step"].get<int64_t>() : 0;
    if (r["rows_elided"].get<bool>() && previous && step != previous + 1) out += "  ...\n";
    previous = step;
    std::snprintf(line, sizeof(line), "  %8lld", static_cast<long long>(step));
    std::string text = line;
    for (const auto& f : r["fields"]) {
      std::snprintf(line, sizeof(line), " %16s", Cell(row[f.get<std::string>()]).c_str());
      text += line;
    }
    out += text + "\n";
  }
  return out;
}

std::string StepLogViewText(const json& r) {
  try {
    return StepLogViewTextUnchecked(r);
  } catch (const nlohmann::json::exception& e) {  // a report not made by ViewStepLog
    return "step log " + Cell(Field(r, "path")) + ": cannot show as text (" + e.what() + "); use --json\n";
  }
}

}  // namespace lockstep
