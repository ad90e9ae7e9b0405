// verify-resume, top to bottom: prepare the work directory, run the reference, run each
// interrupted variant as a chain of child processes, compare each with the reference.
#include "replay/verify_resume.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/run_lock.h"
#include "replay/verify_internal.h"
#include "settings/location_settings.h"
#include "settings/step_plan.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

using namespace verify;  // NOLINT: the variants' building blocks (verify_internal.h)

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// interrupt-K: stop after step K (with a checkpoint there), then resume to the end.
// every-checkpoint: the same at every save step in turn, one process per stretch.
Status RunStopVariant(Context* ctx, const std::string& name, const std::vector<int64_t>& stops, VariantReport* v) {
  ChildRun run;
  for (size_t i = 0; i < stops.size(); ++i) {
    std::vector<std::string> flags = i == 0 ? std::vector<std::string>() : ResumeFlags(*ctx);
    flags.insert(flags.end(), {"--stop-after-step", std::to_string(stops[i])});
    LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, name, v->dir, flags, nullptr, &run));
    NoteResume(run, v);
    if (!run.result.value("stopped_early", false)) {
      return Status::IOError(name + ": the run did not stop after step " + std::to_string(stops[i]));
    }
    Interruption in;
    in.how = "stopped after step " + std::to_string(stops[i]);
    in.last_step = stops[i];
    v->interruptions.push_back(in);
    ctx->Say(name + ": stopped after step " + std::to_string(stops[i]));
  }
  LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, name, v->dir, ResumeFlags(*ctx), nullptr, &run));
  NoteResume(run, v);
  return Status::Ok();
}

// world-A-to-B: a job of A ranks stopped after `stop`, resumed as a job of B with the global
// micro-batch kept. An ordinary run is resumed with --resume-override (it refuses otherwise),
// and the variant says why it cannot be exact.
Status RunWorldVariant(Context* ctx, std::pair<int64_t, int64_t> worlds, int64_t stop, VariantReport* v) {
  const auto [from, to] = worlds;
  const TrainingArgs& args = ctx->options.args;
  ChildRun run;
  LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, v->name, v->dir, {"--stop-after-step", std::to_string(stop)}, nullptr, &run));
  if (!run.result.value("stopped_early", false)) {
    return Status::IOError(v->name + ": the run did not stop after step " + std::to_string(stop));
  }
  Interruption in;
  in.how = "stopped at " + std::to_string(stop) + ", " + std::to_string(from) + " -> " + std::to_string(to) + " ranks";
  in.last_step = stop;
  v->interruptions.push_back(in);
  std::vector<std::string> flags = ResumeFlags(*ctx);
  flags.insert(flags.end(),
               {"--nproc_per_node", std::to_string(to), "--world_size", std::to_string(to),
                "--per_device_train_batch_size", std::to_string(args.per_device_train_batch_size * from / to)});
  if (!args.world_invariant) {
    flags.push_back("--resume-override");
    v->note =
        "resumed with --resume-override: an ordinary data-parallel run's bits depend on its world size (the "
        "all-reduce's summation order, each rank's dropout stream, the sharding); train with --world_invariant";
  }
  ctx->Say(v->name + ": stopped after step " + std::to_string(stop) + "; resuming at " + std::to_string(to) +
           " rank(s)");
  LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, v->name, v->dir, flags, nullptr, &run));
  NoteResume(run, v);
  return Status::Ok();
}

// --world A:B: every A is the reference's size, and each B divides its global micro-batch.
Status CheckWorlds(const VerifyResumeOptions& o) {
  const int64_t global = o.args.per_device_train_batch_size * std::max(1, o.nproc_per_node);
  for (const auto& [from, to] : o.worlds) {
    const std::string pair = "--world " + std::to_string(from) + ":" + std::to_string(to);
    if (from != std::max(1, o.nproc_per_node)) {
      return Status::InvalidArgument(pair + ": the reference runs at " + std::to_string(std::max(1, o.nproc_per_node)) +
                                     " rank(s) (--nproc_per_node, or the first --world pair's A); every --world pair "
                                     "starts from that size");
    }
    if (global % to != 0) {
      return Status::InvalidArgument(pair + ": the global micro-batch (per_device_train_batch_size x " +
                                     std::to_string(from) + " = " + std::to_string(global) + ") does not divide into " +
                                     std::to_string(to) + " ranks, so no job of " + std::to_string(to) +
                                     " trains the same samples per step");
    }
  }
  return Status::Ok();
}

VariantReport NewVariant(const Context& ctx, const std::string& name) {
  VariantReport v;
  v.name = name;
  v.dir = ctx.work_dir + "/" + name;
  return v;
}

bool IsVerifyEntry(const std::string& name) {
  return name == "reference" || name == "every-checkpoint" || name == "kill-random" || name == "crash-points" ||
         name == "logs" || name == kVerifyConfigFile || name == kVerifyReportFile || name.rfind("interrupt-", 0) == 0 ||
         name.rfind("world-", 0) == 0;
}

Status PrepareWorkDir(const TrainingArgs& args) {
  std::error_code ec;
  std::vector<std::string> ours;
  for (const auto& e : fs::directory_iterator(args.output_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (IsVerifyEntry(name)) {
      ours.push_back(e.path().string());
    } else if (name != kRunLockFile) {
      // A training run, or anything else of the user's: never mixed with, never removed.
      return Status::InvalidArgument(args.output_dir + " holds " + name +
                                     ", which verify-resume did not write: it runs in a directory of its own; "
                                     "choose another --output_dir");
    }
  }
  if (ours.empty()) return Status::Ok();
  if (!args.overwrite_output_dir) {
    return Status::InvalidArgument(args.output_dir + " already holds a verify-resume run (" +
                                   fs::path(ours.front()).filename().string() +
                                   "); choose another --output_dir or pass --overwrite_output_dir true");
  }
  for (const auto& p : ours) LOCKSTEP_RETURN_IF_ERROR(RemoveTree(p));
  return Status::Ok();
}

Status CheckVariants(const VerifyResumeOptions& o, int64_t max_steps) {
  std::vector<int64_t> sorted = o.interrupt_at;
  std::sort(sorted.begin(), sorted.end());
  const auto twice = std::adjacent_find(sorted.begin(), sorted.end());
  if (twice != sorted.end()) {
    return Status::InvalidArgument("--interrupt-at names step " + std::to_string(*twice) +
                                   " twice; each step makes one variant");
  }
  for (int64_t k : o.interrupt_at) {
    if (k < 1 || k >= max_steps) {
      return Status::InvalidArgument("--interrupt-at " + std::to_string(k) + ": must be between 1 and " +
                                     std::to_string(max_steps - 1) + " (the run has " + std::to_string(max_steps) +
                                     " steps)");
    }
  }
  if (o.kill_random < 0) return Status::InvalidArgument("--kill-random must be 1 or more");
  if (o.crash_points < 0) return Status::InvalidArgument("--crash-points must be 1 or more");
  if (o.lockstep_binary.empty()) return Status::InvalidArgument("verify-resume: no lockstep executable to run");
  return CheckWorlds(o);
}

}  // namespace

bool VerifyResumeReport::bit_exact() const {
  if (variants.empty()) return false;  // nothing was compared: no verdict
  for (const auto& v : variants) {
    if (!v.diff.identical() || !v.diff.compared_anything()) return false;
  }
  return true;
}

std::string VerifyResumeVerdict(const VerifyResumeReport& r) {
  return r.bit_exact() ? "BIT-EXACT: every resumed run is the uninterrupted run"
                       : "DIVERGED: a resumed run is not the uninterrupted run";
}

std::string VariantVerdict(const VariantReport& v) {
  if (!v.diff.compared_anything()) return "NOTHING COMPARED";
  return v.diff.identical() ? "BIT-EXACT" : "DIVERGED";
}

std::vector<int64_t> DefaultInterruptSteps(int64_t updates_per_epoch, int64_t max_steps) {
  std::vector<int64_t> steps;
  for (int64_t k : {std::max<int64_t>(1, updates_per_epoch / 2), updates_per_epoch}) {
    if (k >= 1 && k < max_steps && (steps.empty() || steps.back() != k)) steps.push_back(k);
  }
  return steps;
}

namespace {

// The steps the plain interrupt variants stop at: --interrupt-at, else the defaults when no
// other variant was asked for. InvalidArgument when no default fits the run.
Status InterruptSteps(const VerifyResumeOptions& options, const StepPlan& plan, std::vector<int64_t>* steps) {
  *steps = options.interrupt_at;
  if (!steps->empty() || options.every_checkpoint || options.kill_random > 0 || options.crash_points > 0) {
    return Status::Ok();
  }
  if (!options.worlds.empty()) return Status::Ok();  // the --world variants stop at the first default step
  *steps = DefaultInterruptSteps(plan.updates_per_epoch, plan.max_steps);
  if (!steps->empty()) return Status::Ok();
  return Status::InvalidArgument(  // no verdict over zero comparisons
      "no interruption fits in the run's " + std::to_string(plan.max_steps) +
      " steps (the defaults stop it in the "
      "middle and at the end of the first epoch, steps " +
      std::to_string(std::max<int64_t>(1, plan.updates_per_epoch / 2)) + " and " +
      std::to_string(plan.updates_per_epoch) + "); pass --interrupt-at K with 1 <= K < " +
      std::to_string(plan.max_steps));
}

// 1. The uninterrupted reference: its saves, the I/O calls of each, its pace.
Status RunReference(Context* ctx, VerifyResumeReport* report, ChildRun* reference) {
  report->reference_dir = ctx->work_dir + "/reference";
  const auto t0 = Clock::now();
  LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, "reference", report->reference_dir, {}, nullptr, reference));
  report->reference_seconds = Since(t0);
  for (const auto& s : reference->result.value("saved_steps", json::array()))
    report->save_steps.push_back(s.get<int64_t>());
  report->save_io_calls = reference->save_io_calls;
  std::string saves;
  for (int64_t s : report->save_steps) saves += (saves.empty() ? "" : ",") + std::to_string(s);
  ctx->Say("reference: " + std::to_string(ctx->max_steps) + " steps, saved at " + (saves.empty() ? "none" : saves) +
           ", " + Format("%.1f s", report->reference_seconds));
  return Status::Ok();
}

// 2. The interrupted variants, each resumed to the end.
Status RunVariants(Context* ctx, const std::vector<int64_t>& interrupts, const StepPlan& plan,
                   const ChildRun& reference, VerifyResumeReport* report) {
  const VerifyResumeOptions& options = ctx->options;
  std::vector<int64_t> saves_before_end;
  for (int64_t s : report->save_steps)
    if (s < ctx->max_steps) saves_before_end.push_back(s);
  if ((options.every_checkpoint || options.kill_random > 0 || options.crash_points > 0) && saves_before_end.empty()) {
    return Status::InvalidArgument(
        "--every-checkpoint, --kill-random and --crash-points need checkpoints to resume "
        "from, but the run saves only at its end (" +
        std::to_string(ctx->max_steps) + " steps); pass --save_steps N with N < " + std::to_string(ctx->max_steps));
  }
  const auto run = [&](const std::string& name, const std::function<Status(VariantReport*)>& body) {
    VariantReport v = NewVariant(*ctx, name);
    const auto t0 = Clock::now();
    LOCKSTEP_RETURN_IF_ERROR(body(&v));
    v.seconds = Since(t0);
    report->variants.push_back(std::move(v));
    return Status::Ok();
  };
  for (int64_t k : interrupts) {
    const std::string name = "interrupt-" + std::to_string(k);
    LOCKSTEP_RETURN_IF_ERROR(run(name, [&](VariantReport* v) { return RunStopVariant(ctx, name, {k}, v); }));
  }
  if (!options.worlds.empty()) {
    const std::vector<int64_t> defaults = DefaultInterruptSteps(plan.updates_per_epoch, plan.max_steps);
    const int64_t stop = !options.interrupt_at.empty() ? options.interrupt_at.front()
                         : defaults.empty()            ? 0
                                                       : defaults.front();
    if (stop < 1) {
      return Status::InvalidArgument("--world: no interruption fits in the run's " + std::to_string(plan.max_steps) +
                                     " steps; pass --interrupt-at K with 1 <= K < " + std::to_string(plan.max_steps));
    }
    for (const auto& worlds : options.worlds) {
      const std::string name = "world-" + std::to_string(worlds.first) + "-to-" + std::to_string(worlds.second);
      LOCKSTEP_RETURN_IF_ERROR(run(name, [&](VariantReport* v) { return RunWorldVariant(ctx, worlds, stop, v); }));
    }
  }
  if (options.every_checkpoint) {
    LOCKSTEP_RETURN_IF_ERROR(run("every-checkpoint", [&](VariantReport* v) {
      return RunStopVariant(ctx, "every-checkpoint", saves_before_end, v);
    }));
  }
  if (options.kill_random > 0) {
    const double step_s = std::max(reference.mean_step_s, 50e-6), save_s = std::max(reference.mean_save_s, 50e-6);
    LOCKSTEP_RETURN_IF_ERROR(
        run("kill-random", [&](VariantReport* v) { return RunKillVariant(ctx, *report, step_s, save_s, v); }));
  }
  if (options.crash_points > 0) {
    LOCKSTEP_RETURN_IF_ERROR(run("crash-points", [&](VariantReport* v) { return RunCrashVariant(ctx, *report, v); }));
  }
  return Status::Ok();
}

}  // namespace

Status VerifyResume(const VerifyResumeOptions& options, VerifyResumeReport* report) {
  *report = VerifyResumeReport();
  LOCKSTEP_RETURN_IF_ERROR(ValidateTrainingArgs(options.args));
  StepPlan plan;
  LOCKSTEP_RETURN_IF_ERROR(ComputeStepPlan(options.args, options.args.train_samples, &plan));
  LOCKSTEP_RETURN_IF_ERROR(CheckVariants(options, plan.max_steps));
  std::vector<int64_t> interrupts;
  LOCKSTEP_RETURN_IF_ERROR(InterruptSteps(options, plan, &interrupts));
  std::unique_ptr<RunLock> lock;  // one verify-resume per work directory
  LOCKSTEP_RETURN_IF_ERROR(RunLock::Acquire(options.args.output_dir, "lockstep verify-resume", &lock));
  LOCKSTEP_RETURN_IF_ERROR(PrepareWorkDir(options.args));

  Context ctx{options, fs::absolute(options.args.output_dir).lexically_normal().string(), "", 0, 0};
  ctx.config_path = ctx.work_dir + "/" + kVerifyConfigFile;
  ctx.max_steps = plan.max_steps;
  const json config = WithoutOutputLocations(TrainingArgsToJson(options.args));
  LOCKSTEP_RETURN_IF_ERROR(WriteJsonFile(ctx.config_path, config));
  report->work_dir = ctx.work_dir;
  report->max_steps = plan.max_steps;
  report->kill_seed = options.kill_seed;
  report->fault = ResumeFaultName(options.fault);

  ChildRun reference;
  LOCKSTEP_RETURN_IF_ERROR(RunReference(&ctx, report, &reference));
  LOCKSTEP_RETURN_IF_ERROR(RunVariants(&ctx, interrupts, plan, reference, report));
  // 3. Every variant against the reference.
  for (auto& v : report->variants) {
    LOCKSTEP_RETURN_IF_ERROR(DiffRuns(report->reference_dir, v.dir, Tolerance(), &v.diff));
  }
  report->children_training_s = ctx.children_training_s;
  return WriteJsonFile(ctx.work_dir + "/" + kVerifyReportFile, VerifyResumeReportJson(*report));
}

json VerifyResumeReportJson(const VerifyResumeReport& r) {
  json variants = json::array();
  for (const auto& v : r.variants) {
    json interruptions = json::array();
    for (const auto& in : v.interruptions) {
      interruptions.push_back({{"how", in.how},
                               {"last_step", in.last_step},
                               {"during_checkpoint_write", in.during_checkpoint_write},
                               {"staging_leftovers", in.leftovers},
                               {"resumed_at", in.resumed_at},
                               {"skipped_checkpoints", in.skipped}});
    }
    variants.push_back({{"name", v.name},
                        {"note", v.note},
                        {"dir", v.dir},
                        {"seconds", v.seconds},
                        {"interruptions", interruptions},
                        {"comparison", RunDiffJson(v.diff)}});
  }
  return {{"verdict", r.bit_exact() ? "bit-exact" : "diverged"},
          {"bit_exact", r.bit_exact()},
          {"work_dir", r.work_dir},
          {"reference",
           {{"dir", r.reference_dir},
            {"max_steps", r.max_steps},
            {"save_steps", r.save_steps},
            {"save_io_calls", r.save_io_calls},
            {"seconds", r.reference_seconds}}},
          {"children_training_s", r.children_training_s},
          {"kill_seed", r.kill_seed},
          {"fault_injected", r.fault},
          {"variants", variants}};
}

}  // namespace lockstep
