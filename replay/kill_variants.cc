// verify-resume's crashing variants: kill-random (SIGKILLs from outside at seeded
// moments) and crash-points (the child kills itself right after a seeded I/O call of a
// save, so the same seed replays the same crashes).
#include <algorithm>
#include <random>

#include "formats/checkpoint.h"
#include "replay/verify_internal.h"

namespace lockstep {
namespace verify {
namespace {

// A uniform draw in [0, 1) from the generator's raw output, the same on every platform
// (std::uniform_*_distribution are not specified bit for bit).
double Uniform01(std::mt19937_64& gen) { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }

// Kill `index` of `count` lands in its own stretch of the run, (index/count, (index+1)/count]
// of the steps, so the kills spread over the whole run. By coin flip it lands inside a
// checkpoint write (a random moment after a save in the stretch begins, within a typical
// save's duration) or at a random moment of a random step of the stretch.
KillPlan PlanKill(std::mt19937_64& gen, int index, int count, int64_t committed, const std::vector<int64_t>& save_steps,
                  int64_t max_steps, double step_s, double save_s) {
  const int64_t lo = std::min(std::max(committed, max_steps * index / count), max_steps - 1);
  const int64_t hi = std::max(max_steps * (index + 1) / count, lo + 1);
  std::vector<int64_t> saves;
  for (int64_t s : save_steps)
    if (s > lo && s <= hi) saves.push_back(s);
  const bool at_save = gen() % 2 == 0;
  if (at_save && !saves.empty()) {
    const int64_t s = saves[gen() % saves.size()];
    return {"save", s, Uniform01(gen) * save_s};
  }
  const int64_t s = lo + 1 + static_cast<int64_t>(gen() % static_cast<uint64_t>(hi - lo));
  return {"step", s, Uniform01(gen) * step_s};
}

// The step of the newest checkpoint of `dir` that validates, 0 for none.
int64_t CommittedStep(const std::string& dir) {
  CheckpointDir latest;
  std::vector<SkippedCheckpoint> skipped;
  return FindLatestValidCheckpoint(dir, VerifyMode::kChecksums, &latest, &skipped).ok() ? latest.step : 0;
}

// Crash `index` of `count`: a save in its own stretch of the run after the last committed
// checkpoint (else the first save after it), and one of that save's I/O calls. Everything
// comes from the seed, and a save makes the same calls every time, so a rerun with the
// same --kill-seed crashes at the same points, byte for byte.
bool PlanCrash(std::mt19937_64& gen, int index, int count, int64_t committed, const VerifyResumeReport& report,
               KillPlan* plan) {
  const int64_t lo = report.max_steps * index / count, hi = report.max_steps * (index + 1) / count;
  std::vector<size_t> in_stretch, after;
  for (size_t i = 0; i < report.save_steps.size(); ++i) {
    const int64_t s = report.save_steps[i];
    if (s <= committed || i >= report.save_io_calls.size() || report.save_io_calls[i] < 1) continue;
    after.push_back(i);
    if (s > lo && s <= hi) in_stretch.push_back(i);
  }
  if (after.empty()) return false;
  const size_t i = in_stretch.empty() ? after.front() : in_stretch[gen() % in_stretch.size()];
  plan->event = "save";
  plan->step = report.save_steps[i];
  plan->io_call = 1 + static_cast<int64_t>(gen() % static_cast<uint64_t>(report.save_io_calls[i]));
  plan->delay_s = 0;
  return true;
}

}  // namespace

Status RunKillVariant(Context* ctx, const VerifyResumeReport& report, double step_s, double save_s, VariantReport* v) {
  std::mt19937_64 gen(ctx->options.kill_seed);
  int64_t committed = 0;
  ChildRun run;
  for (int i = 0; i < ctx->options.kill_random; ++i) {
    KillPlan plan =
        PlanKill(gen, i, ctx->options.kill_random, committed, report.save_steps, report.max_steps, step_s, save_s);
    if (ctx->options.nproc_per_node > 1)
      plan.rank = static_cast<int>(gen() % static_cast<uint64_t>(ctx->options.nproc_per_node));
    LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, v->name, v->dir, ContinueFlags(*ctx, v->dir), &plan, &run));
    NoteResume(run, v);
    if (!run.killed) {
      ctx->Say(v->name + ": the run ended before kill " + std::to_string(i + 1) + " (planned at " + plan.event + " " +
               std::to_string(plan.step) + ")");
      return Status::Ok();
    }
    committed = std::max(committed, run.last_saved);
    Interruption in;
    in.how = "SIGKILL" + (plan.rank >= 0 ? " of rank " + std::to_string(plan.rank) : std::string()) + " " +
             Format("%.2f", plan.delay_s * 1e3) + " ms after " + plan.event + " " + std::to_string(plan.step);
    in.last_step = run.last_step;
    in.during_checkpoint_write = run.last_save > run.last_saved;
    in.leftovers = StagingLeftovers(v->dir);
    v->interruptions.push_back(in);
    ctx->Say(v->name + ": kill " + std::to_string(i + 1) + "/" + std::to_string(ctx->options.kill_random) + ": " +
             in.how + (in.during_checkpoint_write ? " (inside the checkpoint write)" : ""));
  }
  LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, v->name, v->dir, ContinueFlags(*ctx, v->dir), nullptr, &run));
  NoteResume(run, v);
  return Status::Ok();
}

Status RunCrashVariant(Context* ctx, const VerifyResumeReport& report, VariantReport* v) {
  std::mt19937_64 gen(ctx->options.kill_seed);
  ChildRun run;
  const int count = ctx->options.crash_points;
  for (int i = 0; i < count; ++i) {
    KillPlan plan;
    if (!PlanCrash(gen, i, count, CommittedStep(v->dir), report, &plan)) {
      ctx->Say(v->name + ": no save left after the last committed checkpoint for crash " + std::to_string(i + 1));
      break;
    }
    LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, v->name, v->dir, ContinueFlags(*ctx, v->dir), &plan, &run));
    NoteResume(run, v);
    if (!run.killed) {
      return Status::IOError(v->name + ": the child did not crash at I/O call " + std::to_string(plan.io_call) +
                             " of save " + std::to_string(plan.step) +
                             " (the save made fewer calls than the "
                             "reference's)");
    }
    const size_t at =
        std::find(report.save_steps.begin(), report.save_steps.end(), plan.step) - report.save_steps.begin();
    Interruption in;
    in.how = "SIGKILL after I/O call " + std::to_string(plan.io_call) + " of " +
             std::to_string(report.save_io_calls[at]) + " in save " + std::to_string(plan.step);
    in.last_step = run.last_step;
    in.during_checkpoint_write = true;
    in.leftovers = StagingLeftovers(v->dir);
    v->interruptions.push_back(in);
    ctx->Say(v->name + ": crash " + std::to_string(i + 1) + "/" + std::to_string(count) + ": " + in.how);
  }
  LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, v->name, v->dir, ContinueFlags(*ctx, v->dir), nullptr, &run));
  NoteResume(run, v);
  return Status::Ok();
}

}  // namespace verify
}  // namespace lockstep
