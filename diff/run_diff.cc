#include "diff/run_diff.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "formats/step_log.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

// Cause before effect: where the data came from, the generators as the step began (a loop
// that draws its batches from them, as a Python loop may, parts there first), what was
// drawn, then what was computed. In a data-parallel job the other ranks' batches and
// generators are causes as rank 0's are; a job of another size differs first in them.
constexpr const char* kStepFieldOrder[] = {
    "step",      "sampler",        "rng",  "batches", "batches_other_ranks", "rng_other_ranks", "lr",
    "loss_bits", "grad_norm_bits", "epoch"};
// Decimal renderings of fields compared through their bits; never the first cause.
const std::set<std::string> kShadowFields = {"loss", "grad_norm", "wall_time", "kind"};

// Full RNG states appear on some steps only; the digest beside each is what identifies it.
json WithoutFullStates(json rng) {
  if (rng.is_object()) {
    for (auto& [name, generator] : rng.items()) {
      if (generator.is_object()) generator.erase("base64");
    }
  }
  return rng;
}

std::optional<Divergence> FieldDifference(int64_t step, const std::string& field, const json& a, const json& b) {
  const auto d = field == "rng" ? FirstJsonDifference(WithoutFullStates(a), WithoutFullStates(b), field)
                                : FirstJsonDifference(a, b, field);
  if (!d) return std::nullopt;
  return MakeDivergence(step, CauseOfStepField(d->path), "step log", d->path, Abbreviate(d->a), Abbreviate(d->b));
}

// "loss" for "log_history[3].loss".
std::string LastKey(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

json ValueOr(const json& record, const std::string& key) {
  return record.contains(key) ? record[key] : json("(absent)");
}

Status ReadOptionalJson(const std::string& path, json* out, bool* present) {
  *present = fs::exists(path);
  if (!*present) return Status::Ok();
  return ReadJsonFile(path, out);
}

std::optional<Divergence> CompareLogHistory(const json& a, const json& b) {
  const json ha = ArrayField(a, "log_history"), hb = ArrayField(b, "log_history");
  for (size_t i = 0; i < std::max(ha.size(), hb.size()); ++i) {
    const int64_t step = IntField(i < ha.size() ? ha[i] : hb[i], "step", 0);
    if (i >= ha.size() || i >= hb.size()) {
      return MakeDivergence(step, cause::kLength, kTrainerStateFile, "log_history[" + std::to_string(i) + "]",
                            i < ha.size() ? "present" : "(absent)", i < hb.size() ? "present" : "(absent)");
    }
    if (auto d = FirstJsonDifference(ha[i], hb[i], "log_history")) {
      return MakeDivergence(step, CauseOfLogKey(LastKey(d->path)), kTrainerStateFile, d->path, Abbreviate(d->a),
                            Abbreviate(d->b));
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<Divergence> CompareStepRecords(const json& a, const json& b) {
  const int64_t step = a.value("step", int64_t{0});
  for (auto field = std::begin(kStepFieldOrder); field != std::end(kStepFieldOrder); ++field) {
    auto d = FieldDifference(step, *field, ValueOr(a, *field), ValueOr(b, *field));
    if (!d) continue;
    for (auto later = field + 1; later != std::end(kStepFieldOrder); ++later) {
      const auto e = FieldDifference(step, *later, ValueOr(a, *later), ValueOr(b, *later));
      const bool a_cause = e && (e->cause == cause::kData || e->cause == cause::kRng || e->cause == cause::kLr);
      if (a_cause && e->cause != d->cause && std::find(d->also.begin(), d->also.end(), e->cause) == d->also.end()) {
        d->also.push_back(e->cause);
      }
    }
    return d;
  }
  std::set<std::string> rest;
  for (const auto& [k, v] : a.items()) rest.insert(k);
  for (const auto& [k, v] : b.items()) rest.insert(k);
  for (const auto& k : rest) {
    if (kShadowFields.count(k) ||
        std::find(std::begin(kStepFieldOrder), std::end(kStepFieldOrder), k) != std::end(kStepFieldOrder)) {
      continue;
    }
    if (auto d = FieldDifference(step, k, ValueOr(a, k), ValueOr(b, k))) return d;
  }
  return std::nullopt;
}

std::optional<Divergence> RunComparison::First() const {
  std::optional<Divergence> first;
  KeepEarliest(step_log, &first);
  KeepEarliest(log_history, &first);
  if (!checkpoint.differences.empty()) KeepEarliest(checkpoint.differences.front(), &first);
  KeepEarliest(results, &first);
  return first;
}

Status CompareRuns(const std::string& reference_dir, const std::string& candidate_dir, RunComparison* out) {
  *out = RunComparison();
  StepLogContents ref, cand;
  LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(reference_dir + "/" + kStepLogFile, &ref));
  LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(candidate_dir + "/" + kStepLogFile, &cand));
  out->reference_steps = static_cast<int64_t>(ref.records.size());
  out->candidate_steps = static_cast<int64_t>(cand.records.size());
  for (const auto& e : cand.events) {
    if (e.record.value("kind", "") == "resume") out->candidate_resumes.push_back(e.record);
  }

  // 1. The step logs, record by record.
  const size_t n = std::max(ref.records.size(), cand.records.size());
  for (size_t i = 0; i < n && !out->step_log; ++i) {
    if (i >= ref.records.size() || i >= cand.records.size()) {
      const json& present = i < ref.records.size() ? ref.records[i] : cand.records[i];
      out->step_log = MakeDivergence(present.value("step", int64_t{0}), cause::kLength, "step log", "(record)",
                                     i < ref.records.size() ? "present" : "(absent)",
                                     i < cand.records.size() ? "present" : "(absent)");
    } else if (auto d = CompareStepRecords(ref.records[i], cand.records[i])) {
      out->step_log = d;
    } else {
      ++out->steps_matching;
    }
  }

  // 2. The final trainer state: log history entry by entry, then the rest.
  json state_a, state_b;
  bool has_a = false, has_b = false;
  LOCKSTEP_RETURN_IF_ERROR(ReadOptionalJson(reference_dir + "/trainer_state.json", &state_a, &has_a));
  LOCKSTEP_RETURN_IF_ERROR(ReadOptionalJson(candidate_dir + "/trainer_state.json", &state_b, &has_b));
  const int64_t final_step = IntField(state_a, "global_step", out->reference_steps);
  if (has_a != has_b) {
    out->results = MakeDivergence(final_step, cause::kState, kTrainerStateFile, "(file)",
                                  has_a ? "present" : "(absent)", has_b ? "present" : "(absent)");
  } else if (has_a) {
    out->log_history = CompareLogHistory(state_a, state_b);
    if (state_a.is_object()) state_a.erase("log_history");
    if (state_b.is_object()) state_b.erase("log_history");
    if (auto d = FirstJsonDifference(NormalizeRunJson(kTrainerStateFile, state_a),
                                     NormalizeRunJson(kTrainerStateFile, state_b))) {
      out->results =
          MakeDivergence(final_step, cause::kState, kTrainerStateFile, d->path, Abbreviate(d->a), Abbreviate(d->b));
    }
  }

  // 3. The final checkpoint, tensor by tensor.
  const std::string final_name = CheckpointDirName(final_step);
  if (fs::exists(reference_dir + "/" + final_name)) {
    out->final_checkpoint = final_name;
    if (!fs::exists(candidate_dir + "/" + final_name)) {
      out->checkpoint.differences.push_back(
          MakeDivergence(final_step, cause::kWeights, final_name, "(directory)", "present", "(absent)"));
    } else {
      LOCKSTEP_RETURN_IF_ERROR(CompareCheckpoints(reference_dir + "/" + final_name, candidate_dir + "/" + final_name,
                                                  final_step, &out->checkpoint));
    }
  }

  // 4. The results files, wall-clock fields excluded.
  for (const char* name : {kTrainResultsFile, kEvalResultsFile, kAllResultsFile}) {
    json a, b;
    LOCKSTEP_RETURN_IF_ERROR(ReadOptionalJson(reference_dir + "/" + name, &a, &has_a));
    LOCKSTEP_RETURN_IF_ERROR(ReadOptionalJson(candidate_dir + "/" + name, &b, &has_b));
    if (!has_a && !has_b) continue;
    ++out->results_files_compared;
    std::optional<Divergence> d;
    if (has_a != has_b) {
      d = MakeDivergence(final_step, cause::kState, name, "(file)", has_a ? "present" : "(absent)",
                         has_b ? "present" : "(absent)");
    } else if (auto j = FirstJsonDifference(a, b)) {
      d = MakeDivergence(final_step, cause::kState, name, j->path, Abbreviate(j->a), Abbreviate(j->b));
    }
    if (d && !out->results) out->results = d;
  }
  return Status::Ok();
}

json RunComparisonJson(const RunComparison& c) {
  auto opt = [](const std::optional<Divergence>& d) { return d ? d->ToJson() : json(); };
  json differences = json::array();
  for (const auto& d : c.checkpoint.differences) differences.push_back(d.ToJson());
  const auto first = c.First();
  return {{"bit_exact", c.bit_exact()},
          {"first_divergence", opt(first)},
          {"step_log",
           {{"reference_steps", c.reference_steps},
            {"candidate_steps", c.candidate_steps},
            {"steps_matching", c.steps_matching},
            {"first_divergence", opt(c.step_log)}}},
          {"log_history", {{"first_divergence", opt(c.log_history)}}},
          {"final_checkpoint",
           {{"name", c.final_checkpoint},
            {"files_compared", c.checkpoint.files_compared},
            {"tensors_compared", c.checkpoint.tensors_compared},
            {"tensors_identical", c.checkpoint.tensors_identical},
            {"differences", differences}}},
          {"results", {{"files_compared", c.results_files_compared}, {"first_divergence", opt(c.results)}}},
          {"candidate_resumes", c.candidate_resumes}};
}

}  // namespace lockstep
