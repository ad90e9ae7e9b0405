#include "replay/step_replay_check.h"

#include <cstdio>

#include "diff/step_compare.h"
#include "formats/json_file.h"
#include "formats/step_log.h"

using nlohmann::json;

namespace lockstep {
namespace {

// What a replay legitimately changes in a record: when it ran, and that a cross-device
// replay resumed with an override.
StepRecord Comparable(StepRecord r) {
  r.wall_time.reset();
  r.resume_override = false;
  return r;
}

}  // namespace

Status ReplayJudge::Open(const std::string& run_dir, int64_t from_step, int64_t steps, const Tolerance& tolerance,
                         std::unique_ptr<ReplayJudge>* out) {
  const std::string path = run_dir + "/" + kStepLogFile;
  StepLogContents log;
  LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(path, &log));
  std::unique_ptr<ReplayJudge> judge(new ReplayJudge());
  const bool every = steps <= 0;  // every logged step after the checkpoint
  for (const auto& r : log.records) {
    const int64_t step = r.step;
    if (step > from_step && (every || step <= from_step + steps)) judge->logged_[step] = r;
  }
  const int64_t last = log.records.empty() ? 0 : log.records.back().step;
  if (every) {
    if (judge->logged_.empty()) {
      return Status::InvalidArgument(path + ": the log holds steps up to " + std::to_string(last) +
                                     ", none after step " + std::to_string(from_step) + ": nothing to replay");
    }
    steps = judge->logged_.rbegin()->first - from_step;
  }
  if (static_cast<int64_t>(judge->logged_.size()) != steps) {
    return Status::InvalidArgument(path + ": the log holds steps up to " + std::to_string(last) + "; steps " +
                                   std::to_string(from_step + 1) + ".." + std::to_string(from_step + steps) +
                                   " are not all there" + (every ? "" : " (lower --steps)"));
  }
  judge->report_.from_step = from_step;
  judge->report_.steps_requested = steps;
  judge->report_.tolerance = tolerance;
  *out = std::move(judge);
  return Status::Ok();
}

Status ReplayJudge::Begin(int64_t step, StepRecord* logged) {
  if (report_.steps_replayed == 0) started_ = std::chrono::steady_clock::now();
  const auto it = logged_.find(step);
  if (it == logged_.end()) {
    return Status::InvalidArgument("replay asked for step " + std::to_string(step) + ", which is outside the range");
  }
  *logged = it->second;
  const auto cpu = logged->rng.find(step_key::kCpu);
  const bool full = cpu != logged->rng.end() && cpu->second.full();
  ++(full ? report_.full_rng_restores : report_.digest_checks);
  return Status::Ok();
}

Status ReplayJudge::End(const StepRecord& recomputed, bool* stop) {
  const int64_t step = recomputed.step;
  ++report_.steps_replayed;
  report_.replay_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const auto logged = logged_.find(step);
  if (logged == logged_.end()) {
    return Status::InvalidArgument("replay recomputed step " + std::to_string(step) + ", which is outside the range");
  }
  StepRecord a = Comparable(logged->second), b = Comparable(recomputed);
  AlignGenerators(&a, &b);
  if (const auto d = CompareStepRecords(a, b)) {
    if (StepWithinTolerance(a, b, report_.tolerance)) {
      ++report_.steps_within_tolerance;
    } else {
      ReplayMismatch m{step, d->cause, d->field, d->reference, d->candidate, json::object()};
      if (d->cause == cause::kNumerics) m.numerics = NumericsDetail(a, b);
      report_.first_mismatch = m;
      *stop = true;
      return Status::Ok();
    }
  }
  *stop = step >= report_.from_step + report_.steps_requested;
  return Status::Ok();
}

json ReplayReportJson(const ReplayReport& r) {
  json mismatch;
  if (r.first_mismatch) {
    const auto& m = *r.first_mismatch;
    mismatch = {{"step", m.step},           {"cause", m.cause},         {"field", m.field},
                {"reference", m.reference}, {"candidate", m.candidate}, {"numerics", m.numerics}};
  }
  return {{"passed", r.passed()},
          {"from_step", r.from_step},
          {"steps_requested", r.steps_requested},
          {"steps_replayed", r.steps_replayed},
          {"steps_within_tolerance", r.steps_within_tolerance},
          {"full_rng_restores", r.full_rng_restores},
          {"digest_checks", r.digest_checks},
          {"first_mismatch", mismatch},
          {"tolerance", r.tolerance.ToJson()},
          {"replay_seconds", r.replay_seconds},
          {"steps_per_second", r.replay_seconds > 0 ? r.steps_replayed / r.replay_seconds : 0.0}};
}

std::string ReplayReportText(const ReplayReport& r) {
  char line[512];
  std::string out;
  if (r.passed()) {
    std::snprintf(
        line, sizeof(line), "REPLAYED: steps %lld..%lld match the log%s\n", static_cast<long long>(r.from_step + 1),
        static_cast<long long>(r.from_step + r.steps_replayed),
        r.steps_within_tolerance
            ? (" (" + std::to_string(r.steps_within_tolerance) + " within tolerance, not bit for bit)").c_str()
            : " bit for bit");
    out = line;
  } else if (r.first_mismatch) {
    const auto& m = *r.first_mismatch;
    out = "MISMATCH at step " + std::to_string(m.step) + ", cause " + m.cause + ": " + m.field + "\n  logged     " +
          m.reference + "\n  recomputed " + m.candidate + "\n";
    for (const auto& [name, n] : m.numerics.items()) {
      out += "  " + name + ": " + DumpJson(n.value("ulp_float32", json())) + " ulp (float32) apart, relative " +
             DumpJson(n.value("relative", json())) + "\n";
    }
  } else {
    out = "INCOMPLETE: " + std::to_string(r.steps_replayed) + " of " + std::to_string(r.steps_requested) +
          " steps replayed (the run ended first)\n";
  }
  std::snprintf(line, sizeof(line),
                "  %lld steps from checkpoint-%lld in %.3f s (%.1f steps/s); generators restored from the log %lld "
                "times, checked by digest %lld times\n",
                static_cast<long long>(r.steps_replayed), static_cast<long long>(r.from_step), r.replay_seconds,
                r.replay_seconds > 0 ? r.steps_replayed / r.replay_seconds : 0.0,
                static_cast<long long>(r.full_rng_restores), static_cast<long long>(r.digest_checks));
  return out + line;
}

}  // namespace lockstep
