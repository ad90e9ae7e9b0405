#include "diff/run_divergence.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>
#include <set>

#include "diff/run_side.h"
#include "diff/step_compare.h"
#include "diff/tensor_diff.h"
#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/json_file.h"
#include "formats/step_log.h"
#include "formats/tensor_sources.h"
#include "inspect/coverage.h"
#include "inspect/unrestored_state.h"
#include "settings/location_settings.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

// Header fields that say where a run ran rather than what it is.
const char* const kEnvironmentKeys[] = {"lockstep_version", "torch_version", "device", "num_threads", "blas"};
// Requested values the header also records resolved (num_threads, device): shown once, resolved.
const char* const kRequestedKeys[] = {"training_args.num_threads", "training_args.device"};
// Header sections whose difference makes two runs incomparable step by step.
const char* const kStructuralPrefixes[] = {"dataset.", "model.", "plan."};
// Steps after the divergence at which the aftermath shows the loss difference.
const int64_t kAftermathOffsets[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};

void Flatten(const json& j, const std::string& prefix, std::map<std::string, json>* out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [k, v] : j.items()) Flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else {
    (*out)[prefix] = j;
  }
}

bool IsEnvironmentKey(const std::string& key) {
  for (const char* k : kEnvironmentKeys) {
    if (key == k || key.rfind(std::string(k) + ".", 0) == 0) return true;
  }
  return false;
}

Status ReadHfState(RunSide* side) {
  json state;
  std::string source = side->dir + "/" + kTrainerStateFile;
  if (!side->checkpoint_steps.empty() && !fs::exists(source)) {
    source = side->dir + "/" + CheckpointDirName(side->checkpoint_steps.back()) + "/" + kTrainerStateFile;
  }
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(source, &state));
  if (!state.is_object()) return Status::Corruption(source + ": not a JSON object");
  side->log_history = ArrayField(state, "log_history");
  for (const char* key :
       {"train_batch_size", "num_train_epochs", "max_steps", "logging_steps", "eval_steps", "save_steps"}) {
    if (state.contains(key)) side->settings[std::string("trainer_state.") + key] = state[key];
  }
  if (side->checkpoint_steps.empty()) return Status::Ok();
  const std::string newest = side->dir + "/" + CheckpointDirName(side->checkpoint_steps.back());
  json config;
  if (fs::exists(newest + "/" + hf::kConfigFile) && ReadJsonFile(newest + "/" + hf::kConfigFile, &config).ok() &&
      config.is_object()) {
    if (config.contains("transformers_version"))
      side->environment["transformers_version"] = config["transformers_version"];
    if (config.contains("torch_dtype")) side->environment["torch_dtype"] = config["torch_dtype"];
  }
  if (fs::exists(newest + "/" + hf::kTrainingArgsFile)) {
    json scalars;
    LOCKSTEP_RETURN_IF_ERROR(ReadPickledSettings(newest + "/" + hf::kTrainingArgsFile, &scalars));
    for (const auto& [k, v] : scalars.items()) {
      const std::string key = "training_args." + k;
      if (IsOutputLocationSetting(k)) continue;
      (IsEnvironmentKey(key) ? side->environment : side->settings)[key] = v;
    }
  }
  return Status::Ok();
}

Status LoadRun(const std::string& dir, RunSide* side) {
  side->dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound(dir + ": no such run directory");
  std::vector<RunCheckpoint> listed;
  LOCKSTEP_RETURN_IF_ERROR(ListRunCheckpoints(dir, &listed));
  for (const auto& c : listed) {
    int64_t step;
    if (ParseCheckpointDirName(c.name, &step))
      side->checkpoint_steps.push_back(step);
    else
      side->named_checkpoints.push_back(c);
  }
  std::sort(side->checkpoint_steps.begin(), side->checkpoint_steps.end());
  const std::string log_path = dir + "/" + kStepLogFile;
  if (fs::exists(log_path)) {
    side->kind = "lockstep run";
    side->has_log = true;
    LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(log_path, &side->log));
    side->keeps_loss_sums = side->log.header.is_object() && !side->log.header.contains(kStepLogRecorderKey);
    side->world_invariant =
        side->log.header.is_object() &&
        side->log.header.value("training_args", json::object()).value("world_invariant", false) == true;
    std::map<std::string, json> header;
    json h = side->log.header;
    // Where a log begins is not a setting: a run resumed into a new directory says so.
    for (const char* k : {"kind", "magic", "format_version", "resumed_from_step"}) h.erase(k);
    Flatten(h, "", &header);
    for (auto& [k, v] : header) {
      if (std::find(std::begin(kRequestedKeys), std::end(kRequestedKeys), k) != std::end(kRequestedKeys)) continue;
      (IsEnvironmentKey(k) ? side->environment : side->settings)[k] = v;
    }
    // log_history too, from where HF keeps it (the newest checkpoint's, without save_state()):
    // what a run without a step log is compared by.
    std::string source = dir + "/" + kTrainerStateFile;
    if (!fs::exists(source) && !side->checkpoint_steps.empty()) {
      source = dir + "/" + CheckpointDirName(side->checkpoint_steps.back()) + "/" + kTrainerStateFile;
    }
    json state;
    if (fs::exists(source) && ReadJsonFile(source, &state).ok()) side->log_history = ArrayField(state, "log_history");
    return Status::Ok();
  }
  if (!fs::exists(dir + "/" + kTrainerStateFile) && side->checkpoint_steps.empty()) {
    if (!side->named_checkpoints.empty()) {  // accelerate's, Lightning's, DCP's: checkpoints alone
      side->kind = "run";
      return Status::Ok();
    }
    return Status::InvalidArgument(dir + ": not a run directory (no " + std::string(kStepLogFile) + ", no " +
                                   kTrainerStateFile +
                                   ", no checkpoint-N, accelerate checkpoints/, Lightning .ckpt "
                                   "or DCP folder)");
  }
  side->kind = "hf run";
  return ReadHfState(side);
}

// The part of a settings name two formats share: "training_args.seed" in both.
void DiffSettings(const std::map<std::string, json>& a, const std::map<std::string, json>& b, bool same_kind,
                  std::vector<SettingDifference>* out) {
  std::map<std::string, std::pair<json, json>> all;
  for (const auto& [k, v] : a) all[k].first = v;
  for (const auto& [k, v] : b) all[k].second = v;
  for (const auto& [k, vv] : all) {
    const bool in_a = a.count(k), in_b = b.count(k);
    if (!same_kind && !(in_a && in_b)) continue;  // only what both formats record
    if (vv.first != vv.second) {
      out->push_back({k, in_a ? vv.first : json("(absent)"), in_b ? vv.second : json("(absent)")});
    }
  }
}

// Counts one compared step (or log entry): a match, the first divergence, or the first
// step outside the tolerance, after which the comparison stops (returns false).
bool Tally(const std::optional<Divergence>& d, bool within, RunDiff* out) {
  if (!d) {
    if (!out->first_divergence) ++out->steps_matching;
    return true;
  }
  if (!out->first_divergence) out->first_divergence = d;
  if (within) return true;
  out->first_outside_tolerance = d->step;
  return false;
}

// The index of the first record of `records` at or after `step`.
size_t FirstAtOrAfter(const std::vector<StepRecord>& records, int64_t step) {
  size_t i = 0;
  while (i < records.size() && records[i].step < step) ++i;
  return i;
}

// One log has a record the other lacks: named by the file that lacks it and where that
// file ends (a killed writer's truncated tail, or a run that stopped).
Divergence MissingRecord(const StepRecord& record, const RunSide& lacks, bool reference_has) {
  const int64_t step = record.step;
  const auto& records = lacks.log.records;
  std::string why =
      "(absent: its records end at step " + (records.empty() ? std::string("0") : std::to_string(records.back().step));
  why += lacks.log.truncated_tail ? "; the file ends inside a frame: " + lacks.log.tail_problem + ")" : ")";
  return MakeDivergence(step, cause::kLength, lacks.dir + "/" + kStepLogFile, "record of step " + std::to_string(step),
                        reference_has ? "present" : why, reference_has ? why : "present");
}

void CompareStepLogs(const RunSide& a, const RunSide& b, const Tolerance& tol, RunDiff* out) {
  const auto& ra = a.log.records;
  const auto& rb = b.log.records;
  // A log that says it begins after step N (a run resumed into a new directory: the header's
  // resumed_from_step) is compared from step N + 1; the other's earlier steps have nothing to
  // be compared with. Any other log that lacks early steps is a difference in length.
  size_t ia = 0, ib = 0;
  const auto declared_start = [](const RunSide& side) {
    return side.log.header.value("resumed_from_step", int64_t{0}) + 1;
  };
  const int64_t from = std::max(declared_start(a), declared_start(b));
  if (from > 1) {
    out->compared_from_step = from;
    ia = FirstAtOrAfter(ra, from);
    ib = FirstAtOrAfter(rb, from);
  }
  // Generators neither run drew from are compared apart: their difference alone is a note.
  // Each rank's: idle[r] for rank r (0: rng; r > 0: rng_other_ranks[r - 1]).
  const size_t ranks = 1 + std::max(ra.empty() ? 0 : ra.front().rng_other_ranks.size(),
                                    rb.empty() ? 0 : rb.front().rng_other_ranks.size());
  std::vector<std::set<std::string>> idle(ranks);
  for (size_t r = 0; r < ranks; ++r) {
    const std::set<std::string> idle_a = IdleGenerators(a.log, r), idle_b = IdleGenerators(b.log, r);
    std::set_intersection(idle_a.begin(), idle_a.end(), idle_b.begin(), idle_b.end(),
                          std::inserter(idle[r], idle[r].end()));
  }
  std::optional<Divergence> idle_difference;
  for (; ia < ra.size() || ib < rb.size(); ++ia, ++ib) {
    std::optional<Divergence> d;
    bool within = false;
    if (ia >= ra.size() || ib >= rb.size()) {
      d = MissingRecord(ia < ra.size() ? ra[ia] : rb[ib], ia >= ra.size() ? a : b, ia < ra.size());
    } else {
      StepRecord x = ra[ia], y = rb[ib];
      AlignGenerators(&x, &y);
      StepRecord idle_x, idle_y;  // the unused generators alone
      idle_x.step = idle_y.step = x.step;
      idle_x.rng = TakeGenerators(idle[0], &x.rng);
      idle_y.rng = TakeGenerators(idle[0], &y.rng);
      for (size_t r = 1; r < ranks && r <= x.rng_other_ranks.size() && r <= y.rng_other_ranks.size(); ++r) {
        idle_x.rng_other_ranks.push_back(TakeGenerators(idle[r], &x.rng_other_ranks[r - 1]));
        idle_y.rng_other_ranks.push_back(TakeGenerators(idle[r], &y.rng_other_ranks[r - 1]));
      }
      const auto idle_d = CompareStepRecords(idle_x, idle_y);
      if (idle_d && !idle_difference) idle_difference = idle_d;
      d = CompareStepRecords(x, y);
      // The runs part at the first step compared only in what they computed: an unused
      // generator that differs is then the earliest difference in what each was given (a
      // different seed, drawn from before step 1 to initialise the model). It never outranks
      // a field that changed (data, rng, lr), nor a step after others agreed with the same
      // difference present: it changed nothing then (an unseeded NumPy, never drawn from).
      const bool first_compared = out->steps_matching == 0 && !out->first_divergence;
      if (d && idle_d && IsNumericOutcome(d->cause) && first_compared) d = idle_d;
      if (d) within = !idle_d && StepWithinTolerance(x, y, tol);
      if (d && !out->first_divergence && d->cause == cause::kNumerics) out->numerics = NumericsDetail(x, y);
    }
    if (!Tally(d, within, out)) break;
  }
  if (idle_difference) {
    const std::string& field = idle_difference->field;  // rng.numpy.xxh3_128, rng_other_ranks[0].numpy.xxh3_128
    const size_t first_dot = field.find('.');
    const std::string name = field.substr(0, field.find('.', first_dot + 1));
    out->notes.push_back(name + " differs from step " + std::to_string(idle_difference->step) +
                         ", but neither run drew from it (its state never moved within a process): " +
                         (out->first_divergence && out->first_divergence->field.rfind(name, 0) == 0
                              ? "named because the runs also part in what they computed"
                              : "not a divergence by itself"));
  }
}

// Entry i of two log histories: a missing entry, or the first key that differs, as a
// divergence at the entry's step; `within` when the tolerance accepts every difference.
std::optional<Divergence> CompareLogEntry(const json& ha, const json& hb, size_t i, const Tolerance& tol,
                                          bool keeps_loss_sums, bool* within, RunDiff* out) {
  *within = false;
  const int64_t step = IntField(i < ha.size() ? ha[i] : hb[i], "step", 0);
  const std::string entry = "log_history[" + std::to_string(i) + "]";
  if (i >= ha.size() || i >= hb.size()) {
    return MakeDivergence(step, cause::kLength, kTrainerStateFile, entry, i < ha.size() ? "present" : "(absent)",
                          i < hb.size() ? "present" : "(absent)");
  }
  const auto j = FirstDifferenceBesideBookkeeping(ha[i], hb[i], std::string(kTrainerStateFile) + " " + entry,
                                                  keeps_loss_sums, out);
  if (!j) return std::nullopt;
  const std::string key = j->path.substr(j->path.rfind('.') + 1);
  *within = tol.any();
  for (const auto& diff : JsonDifferences(ha[i], hb[i], 64)) {
    *within = *within && NumbersWithinTolerance(diff.a, diff.b, tol) && IsNumericOutcome(CauseOfLogKey(diff.path));
  }
  if (!out->first_divergence && IsNumericOutcome(CauseOfLogKey(key)) && j->a.is_number() && j->b.is_number()) {
    out->numerics[key] = FloatDistance(j->a.get<float>(), j->b.get<float>());
  }
  return MakeDivergence(step, CauseOfLogKey(key), kTrainerStateFile, entry + "." + key, Abbreviate(j->a),
                        Abbreviate(j->b));
}

// Entry by entry, for runs without a step log (Hugging Face's).
void CompareLogHistories(const json& ha, const json& hb, const Tolerance& tol, RunDiff* out) {
  for (size_t i = 0; i < std::max(ha.size(), hb.size()); ++i) {
    bool within = false;
    const auto d = CompareLogEntry(ha, hb, i, tol, /*keeps_loss_sums=*/false, &within, out);
    if (!Tally(d, within, out)) return;
  }
}

// Beside the step logs: the log history's entries (mean losses over a logging window, eval
// metrics) can differ where every step record agrees (a running loss sum restored wrong);
// the first such entry is a divergence at its own step.
void CompareLogHistoriesBesideStepLogs(const json& ha, const json& hb, const Tolerance& tol, bool keeps_loss_sums,
                                       RunDiff* out) {
  for (size_t i = 0; i < std::max(ha.size(), hb.size()); ++i) {
    bool within = false;
    const auto d = CompareLogEntry(ha, hb, i, tol, keeps_loss_sums, &within, out);
    if (!d) continue;
    if (!within && (!out->first_outside_tolerance || d->step < *out->first_outside_tolerance)) {
      out->first_outside_tolerance = d->step;
    }
    KeepEarliest(d, &out->first_divergence);
    return;
  }
}

}  // namespace

namespace {

// step -> loss, from the step log where there is one, else from log_history.
std::map<int64_t, float> LossByStep(const RunSide& side) {
  std::map<int64_t, float> out;
  if (side.has_log) {
    for (const auto& r : side.log.records) out[r.step] = r.loss;
  } else {
    for (const auto& e : side.log_history) {
      if (e.contains("loss") && e["loss"].is_number()) out[IntField(e, "step", 0)] = e["loss"].get<float>();
    }
  }
  return out;
}

void ComputeAftermath(const RunSide& a, const RunSide& b, RunDiff* out) {
  Aftermath& m = out->aftermath;
  m.tolerance = out->tolerance.any() ? out->tolerance : Tolerance{std::nullopt, 1e-3, std::nullopt};
  const int64_t from = out->first_divergence->step;
  const auto la = LossByStep(a), lb = LossByStep(b);
  int64_t last = -1;
  for (auto it = la.lower_bound(from); it != la.end(); ++it) {
    const auto jt = lb.find(it->first);
    if (jt == lb.end()) continue;
    last = it->first;
    const double delta = std::fabs(static_cast<double>(jt->second) - it->second);
    if (std::isfinite(delta)) m.max_abs_loss_delta = std::max(m.max_abs_loss_delta, delta);
    if (!m.first_step_beyond && !FloatClose(it->second, jt->second, m.tolerance)) m.first_step_beyond = it->first;
    const bool shown = it->first == from || std::find(std::begin(kAftermathOffsets), std::end(kAftermathOffsets),
                                                      it->first - from) != std::end(kAftermathOffsets);
    if (shown) m.losses.push_back({it->first, it->second, jt->second});
  }
  if (last >= 0 && (m.losses.empty() || m.losses.back().step != last))
    m.losses.push_back({last, la.at(last), lb.at(last)});
  // The state step `from` began from is checkpoint-(from-1) or an earlier one.
  for (auto it = b.checkpoint_steps.rbegin(); it != b.checkpoint_steps.rend(); ++it) {
    if (*it >= from) continue;
    m.nearest_checkpoint = CheckpointDirName(*it);
    // Replay re-executes a step from Lockstep's own checkpoints; another trainer's (HF's, a
    // recorded loop's own format) it cannot load. It needs the step in the log: a log that
    // ends before it (cut, or a run that stopped) has nothing to replay it against.
    // A damaged file is no step to re-execute: its checksum already says what happened.
    if (b.has_log && lb.count(from) == 1 && CheckpointLayout(b.dir + "/" + m.nearest_checkpoint) == "lockstep" &&
        out->first_divergence->cause != cause::kDamaged) {
      m.replay_command = "lockstep replay " + b.dir + " --from " + b.dir + "/" + m.nearest_checkpoint + " --steps " +
                         std::to_string(from - *it);
    }
    break;
  }
}

bool Structural(const std::string& key) {
  for (const char* p : kStructuralPrefixes) {
    if (key.rfind(p, 0) == 0) return true;
  }
  return false;
}

}  // namespace

bool RunDiff::identical() const {
  return !first_divergence && results.empty() &&
         std::all_of(checkpoints.begin(), checkpoints.end(), [](const CheckpointSummary& c) { return c.identical; });
}

bool RunDiff::within_tolerance() const {
  if (identical()) return true;
  if (!tolerance.any() || first_outside_tolerance) return false;
  if (first_divergence && !IsNumericOutcome(first_divergence->cause) && first_divergence->cause != cause::kWeights &&
      first_divergence->cause != cause::kState) {
    return false;
  }
  return results_within && std::all_of(checkpoints.begin(), checkpoints.end(),
                                       [](const CheckpointSummary& c) { return c.within_tolerance; });
}

static Status DiffLoadedRunsUnchecked(const RunSide& a, const RunSide& b, const Tolerance& tolerance, RunDiff* out) {
  *out = RunDiff();
  out->tolerance = tolerance;
  out->kind_a = a.kind;
  out->kind_b = b.kind;
  for (const auto& e : b.log.events) {
    if (e.record.value(step_key::kKind, "") == event_key::kResume) out->candidate_resumes.push_back(e.record);
  }
  const bool same_kind = a.kind == b.kind;
  DiffSettings(a.settings, b.settings, same_kind, &out->settings);
  DiffSettings(a.environment, b.environment, same_kind, &out->environment);
  out->reference_steps =
      a.has_log ? static_cast<int64_t>(a.log.records.size()) : static_cast<int64_t>(a.log_history.size());
  out->candidate_steps =
      b.has_log ? static_cast<int64_t>(b.log.records.size()) : static_cast<int64_t>(b.log_history.size());

  // Another world size changes the plan (the batches each rank gets), but the runs are the
  // same model on the same data: their step logs are compared, and step 1 names the data.
  const bool world_changed = std::any_of(out->settings.begin(), out->settings.end(), [](const SettingDifference& s) {
    return s.name == "training_args.world_size";
  });
  const auto structural = std::find_if(out->settings.begin(), out->settings.end(), [&](const SettingDifference& s) {
    return Structural(s.name) && !(world_changed && s.name.rfind("plan.", 0) == 0);
  });
  if (same_kind && structural != out->settings.end()) {
    out->compared_by = "settings";
    out->first_divergence = MakeDivergence(1, cause::kSettings, "step log header", structural->name,
                                           Abbreviate(structural->reference), Abbreviate(structural->candidate));
    out->first_outside_tolerance = 1;
    return Status::Ok();
  }
  if (a.has_log && b.has_log) {
    out->compared_by = "step log";
    CompareStepLogs(a, b, tolerance, out);
    CompareLogHistoriesBesideStepLogs(a.log_history, b.log_history, tolerance, a.keeps_loss_sums && b.keeps_loss_sums,
                                      out);
  } else {
    out->compared_by = "log_history";
    CompareLogHistories(a.log_history, b.log_history, tolerance, out);
  }
  LOCKSTEP_RETURN_IF_ERROR(CompareCommonCheckpoints(a, b, out));
  LOCKSTEP_RETURN_IF_ERROR(CompareTopLevelModels(a, b, out));
  // One run recorded its steps and the other did not: what both record was compared, and the
  // records are said not to have been (a verdict over what was compared, never over all).
  if (a.has_log != b.has_log) {
    out->not_compared = "the " + std::string(a.has_log ? "reference" : "candidate") + "'s " +
                        std::to_string((a.has_log ? a : b).log.records.size()) + " step records: the " +
                        (a.has_log ? "candidate" : "reference") + " (" + (a.has_log ? b.dir : a.dir) + ") has no " +
                        kStepLogFile;
  }
  LOCKSTEP_RETURN_IF_ERROR(CompareResults(a, b, out, &out->results_within));
  // A resume by fewer ranks than saved its checkpoint: what each side left unread.
  for (const RunSide* side : {&a, &b}) {
    for (const auto& u : FindUnrestoredState(side->dir, side->log)) {
      out->notes.push_back(std::string(side == &a ? "reference" : "candidate") + ": " + UnrestoredStateText(u));
    }
  }
  // A checkpoint that differs before the logs do is the earlier sign: the runs parted in a
  // way the logged loss and grad norm did not show (weights moved by an ULP). On a tie the
  // step record, the cause, wins.
  for (const auto& c : out->checkpoints) {
    if (!c.identical) KeepEarliest(c.first, &out->first_divergence);
  }
  if (!out->first_divergence && !out->results.empty()) out->first_divergence = out->results.front();
  // Parted on the data: which samples each run saw, epoch by epoch, says how.
  if (out->first_divergence && out->first_divergence->cause == cause::kData && a.has_log && b.has_log) {
    out->coverage_a = CoverageJson(ComputeCoverage(a.log, a.dir + "/" + kStepLogFile));
    out->coverage_b = CoverageJson(ComputeCoverage(b.log, b.dir + "/" + kStepLogFile));
  }
  if (out->first_divergence) ComputeAftermath(a, b, out);
  return Status::Ok();
}

// A value of the wrong JSON type anywhere in the inputs is corruption, never an exception.
Status DiffLoadedRuns(const RunSide& a, const RunSide& b, const Tolerance& tolerance, RunDiff* out) {
  return CorruptionOnJsonTypeError(a.dir + " or " + b.dir,
                                   [&] { return DiffLoadedRunsUnchecked(a, b, tolerance, out); });
}

Status DiffRuns(const std::string& reference, const std::string& candidate, const Tolerance& tolerance, RunDiff* out) {
  RunSide a, b;
  LOCKSTEP_RETURN_IF_ERROR(LoadRunChecked(reference, &a));
  LOCKSTEP_RETURN_IF_ERROR(LoadRunChecked(candidate, &b));
  return DiffLoadedRuns(a, b, tolerance, out);
}

Status LoadRunChecked(const std::string& dir, RunSide* side) {
  return CorruptionOnJsonTypeError(dir, [&] { return LoadRun(dir, side); });
}

}  // namespace lockstep
