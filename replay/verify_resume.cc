// verify-resume, top to bottom: prepare the work directory, run the reference, run each
// interrupted variant as a chain of child processes, compare each with the reference.
#include "replay/verify_resume.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/run_lock.h"
#include "replay/child_process.h"
#include "trainer/step_plan.h"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace lockstep {
namespace {

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// What one child process did, as seen from its events, exit and output.
struct ChildRun {
  json result;               // its --json output; empty when it was killed
  bool killed = false;       // by us, as planned
  int64_t last_step = 0;     // the last "step" event
  int64_t last_save = -1;    // the last "save" event (a checkpoint write began)
  int64_t last_saved = -1;   // the last "saved" event (a checkpoint committed)
  int64_t resumed_at = -1;   // the "resumed" event's step; -1 when it started fresh
  std::vector<int64_t> save_io_calls;  // per save, in order: its write, fsync and rename calls
  std::vector<std::string> skipped;  // "warning: skipping ..." lines of its stderr
  double mean_step_s = 0;    // from its events: for timing kills
  double mean_save_s = 0;
};

// When to SIGKILL a child: `delay_s` after it reports event `event` for step `step`; or,
// with `io_call` > 0, the child kills itself after that I/O call of the save at `step`.
struct KillPlan {
  std::string event;
  int64_t step = 0;
  double delay_s = 0;
  int64_t io_call = 0;
};

// Everything the variants share.
struct Context {
  const VerifyResumeOptions& options;
  std::string work_dir;
  std::string config_path;
  int64_t max_steps = 0;
  int attempts = 0;  // numbers each child's log files
  void Say(const std::string& line, bool transient = false) const {
    if (options.progress) options.progress(line, transient);
  }
};

std::string Format(const char* fmt, double a) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, a);
  return buf;
}

std::vector<std::string> SkipWarnings(const std::string& stderr_path, std::streamoff from) {
  std::ifstream in(stderr_path);
  in.seekg(from);
  std::vector<std::string> out;
  const std::string prefix = "warning: skipping ";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line.substr(prefix.size()));
  }
  return out;
}

std::string LastLines(const std::string& path, std::streamoff from, size_t max_chars = 800) {
  std::ifstream in(path);
  in.seekg(from);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > max_chars) text = "..." + text.substr(text.size() - max_chars);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// Runs one child `lockstep train` in `dir` with `extra` flags, follows its events for the
// progress display, and SIGKILLs it when `kill` says so. A child that fails on its own
// (non-zero exit, or silence past the timeout) is an error carrying its stderr.
Status RunChild(Context* ctx, const std::string& label, const std::string& dir,
                const std::vector<std::string>& extra, const KillPlan* kill, ChildRun* out) {
  *out = ChildRun();
  const int attempt = ++ctx->attempts;
  const std::string logs = ctx->work_dir + "/logs";
  fs::create_directories(logs);
  const std::string stem = logs + "/" + std::to_string(attempt) + "-" + label;
  const std::string stdout_path = stem + ".json", stderr_path = stem + ".stderr";
  std::vector<std::string> argv = {ctx->options.lockstep_binary, "train", "--config", ctx->config_path,
                                   "--output_dir", dir, "--quiet", "--json",
                                   "--event-fd", std::to_string(ChildProcess::kEventFd)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const bool self_kill = kill != nullptr && kill->io_call > 0;
  if (self_kill) argv.insert(argv.end(), {"--crash-at-io", std::to_string(kill->step) + ":" + std::to_string(kill->io_call)});
  std::unique_ptr<ChildProcess> child;
  LOCKSTEP_RETURN_IF_ERROR(ChildProcess::Start(argv, stdout_path, stderr_path, &child));

  Clock::time_point first_step_at, last_step_at, save_at, last_note = Clock::now();
  int64_t steps_seen = 0, saves_seen = 0;
  double save_seconds = 0;
  std::string name;
  int64_t step = 0;
  while (true) {
    const auto next = child->NextEvent(ctx->options.child_timeout_s, &name, &step);
    if (next == ChildProcess::Next::kEnd) break;
    if (next == ChildProcess::Next::kTimeout) {
      child->Kill();
      return Status::IOError(label + ": lockstep train (pid " + std::to_string(child->pid()) + ") was silent for " +
                             Format("%.0f", ctx->options.child_timeout_s) + " s and was killed; see " + stderr_path);
    }
    const auto now = Clock::now();
    if (name == "step") {
      out->last_step = step;
      if (steps_seen++ == 0) first_step_at = now;
      last_step_at = now;
      if (std::chrono::duration<double>(now - last_note).count() > 0.1) {
        ctx->Say(label + ": step " + std::to_string(step) + "/" + std::to_string(ctx->max_steps), true);
        last_note = now;
      }
    } else if (name == "save") {
      out->last_save = step;
      save_at = now;
    } else if (name == "saved") {
      out->last_saved = step;
      save_seconds += std::chrono::duration<double>(now - save_at).count();
      ++saves_seen;
    } else if (name == "resumed") {
      out->resumed_at = step;
    } else if (name == "save-io") {
      out->save_io_calls.push_back(step);
    }
    if (kill && !self_kill && !out->killed && name == kill->event && step == kill->step) {
      std::this_thread::sleep_for(std::chrono::duration<double>(kill->delay_s));
      child->Kill();
      out->killed = true;
    }
  }
  int exit_code = 0, signal = 0;
  LOCKSTEP_RETURN_IF_ERROR(child->Wait(&exit_code, &signal));
  out->skipped = SkipWarnings(stderr_path, 0);
  if (steps_seen > 1) {
    out->mean_step_s = std::chrono::duration<double>(last_step_at - first_step_at).count() / (steps_seen - 1);
  }
  if (saves_seen > 0) out->mean_save_s = save_seconds / saves_seen;
  if ((out->killed || self_kill) && signal == SIGKILL) {
    out->killed = true;
    return Status::Ok();
  }
  out->killed = false;  // it finished before the kill landed
  if (exit_code != 0) {
    return Status::IOError(label + ": lockstep train exited with " +
                           (signal ? "signal " + std::to_string(signal) : "code " + std::to_string(exit_code)) +
                           ":\n" + LastLines(stderr_path, 0));
  }
  return ReadJsonFile(stdout_path, &out->result);
}

std::vector<std::string> ResumeFlags(const Context& ctx) {
  std::vector<std::string> flags = {"--resume"};
  if (ctx.options.fault != ResumeFault::kNone) {
    flags.insert(flags.end(), {"--fault-inject", ResumeFaultName(ctx.options.fault)});
  }
  return flags;
}

std::vector<std::string> StagingLeftovers(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (IsCheckpointLeftover(name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The next process of a variant: it resumes when a valid checkpoint exists, and starts
// afresh otherwise (a kill before the first checkpoint), as a user would.
std::vector<std::string> ContinueFlags(const Context& ctx, const std::string& dir) {
  CheckpointDir latest;
  std::vector<SkippedCheckpoint> skipped;
  if (FindLatestValidCheckpoint(dir, VerifyMode::kChecksums, &latest, &skipped).ok()) return ResumeFlags(ctx);
  return {"--overwrite_output_dir", "true"};
}

void NoteResume(const ChildRun& run, VariantReport* v) {
  if (v->interruptions.empty() || v->interruptions.back().resumed_at != -1) return;
  v->interruptions.back().resumed_at = std::max<int64_t>(run.resumed_at, 0);
  v->interruptions.back().skipped = run.skipped;
}

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

// A uniform draw in [0, 1) from the generator's raw output, the same on every platform
// (std::uniform_*_distribution are not specified bit for bit).
double Uniform01(std::mt19937_64& gen) { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }

// Kill `index` of `count` lands in its own stretch of the run, (index/count, (index+1)/count]
// of the steps, so the kills spread over the whole run. By coin flip it lands inside a
// checkpoint write (a random moment after a save in the stretch begins, within a typical
// save's duration) or at a random moment of a random step of the stretch.
KillPlan PlanKill(std::mt19937_64& gen, int index, int count, int64_t committed,
                  const std::vector<int64_t>& save_steps, int64_t max_steps, double step_s, double save_s) {
  const int64_t lo = std::min(std::max(committed, max_steps * index / count), max_steps - 1);
  const int64_t hi = std::max(max_steps * (index + 1) / count, lo + 1);
  std::vector<int64_t> saves;
  for (int64_t s : save_steps) if (s > lo && s <= hi) saves.push_back(s);
  const bool at_save = gen() % 2 == 0;
  if (at_save && !saves.empty()) {
    const int64_t s = saves[gen() % saves.size()];
    return {"save", s, Uniform01(gen) * save_s};
  }
  const int64_t s = lo + 1 + static_cast<int64_t>(gen() % static_cast<uint64_t>(hi - lo));
  return {"step", s, Uniform01(gen) * step_s};
}

Status RunKillVariant(Context* ctx, const VerifyResumeReport& report, double step_s, double save_s,
                      VariantReport* v) {
  std::mt19937_64 gen(ctx->options.kill_seed);
  int64_t committed = 0;
  ChildRun run;
  for (int i = 0; i < ctx->options.kill_random; ++i) {
    const KillPlan plan = PlanKill(gen, i, ctx->options.kill_random, committed, report.save_steps, report.max_steps,
                                   step_s, save_s);
    LOCKSTEP_RETURN_IF_ERROR(RunChild(ctx, v->name, v->dir, ContinueFlags(*ctx, v->dir), &plan, &run));
    NoteResume(run, v);
    if (!run.killed) {
      ctx->Say(v->name + ": the run ended before kill " + std::to_string(i + 1) + " (planned at " + plan.event +
               " " + std::to_string(plan.step) + ")");
      return Status::Ok();
    }
    committed = std::max(committed, run.last_saved);
    Interruption in;
    in.how = "SIGKILL " + Format("%.2f", plan.delay_s * 1e3) + " ms after " + plan.event + " " + std::to_string(plan.step);
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
                             " of save " + std::to_string(plan.step) + " (the save made fewer calls than the "
                             "reference's)");
    }
    const size_t at = std::find(report.save_steps.begin(), report.save_steps.end(), plan.step) - report.save_steps.begin();
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

VariantReport NewVariant(const Context& ctx, const std::string& name) {
  VariantReport v;
  v.name = name;
  v.dir = ctx.work_dir + "/" + name;
  return v;
}

bool IsVerifyEntry(const std::string& name) {
  return name == "reference" || name == "every-checkpoint" || name == "kill-random" || name == "crash-points" ||
         name == "logs" ||
         name == "config.json" || name == "verify_report.json" || name.rfind("interrupt-", 0) == 0;
}

Status PrepareWorkDir(const TrainingArgs& args) {
  std::error_code ec;
  std::vector<std::string> ours;
  for (const auto& e : fs::directory_iterator(args.output_dir, ec)) {
    if (IsVerifyEntry(e.path().filename().string())) ours.push_back(e.path().string());
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
  return Status::Ok();
}

}  // namespace

bool VerifyResumeReport::bit_exact() const {
  for (const auto& v : variants) {
    if (!v.comparison.bit_exact()) return false;
  }
  return true;
}

std::vector<int64_t> DefaultInterruptSteps(int64_t updates_per_epoch, int64_t max_steps) {
  std::vector<int64_t> steps;
  for (int64_t k : {std::max<int64_t>(1, updates_per_epoch / 2), updates_per_epoch}) {
    if (k >= 1 && k < max_steps && (steps.empty() || steps.back() != k)) steps.push_back(k);
  }
  return steps;
}

Status VerifyResume(const VerifyResumeOptions& options, VerifyResumeReport* report) {
  *report = VerifyResumeReport();
  LOCKSTEP_RETURN_IF_ERROR(ValidateTrainingArgs(options.args));
  StepPlan plan;
  LOCKSTEP_RETURN_IF_ERROR(ComputeStepPlan(options.args, options.args.train_samples, &plan));
  LOCKSTEP_RETURN_IF_ERROR(CheckVariants(options, plan.max_steps));
  std::unique_ptr<RunLock> lock;  // one verify-resume per work directory
  LOCKSTEP_RETURN_IF_ERROR(RunLock::Acquire(options.args.output_dir, "lockstep verify-resume", &lock));
  LOCKSTEP_RETURN_IF_ERROR(PrepareWorkDir(options.args));

  Context ctx{options, fs::absolute(options.args.output_dir).lexically_normal().string(), "", 0, 0};
  ctx.config_path = ctx.work_dir + "/config.json";
  ctx.max_steps = plan.max_steps;
  json config = TrainingArgsToJson(options.args);
  config.erase("output_dir");
  config.erase("overwrite_output_dir");
  LOCKSTEP_RETURN_IF_ERROR(WriteJsonFile(ctx.config_path, config));
  report->work_dir = ctx.work_dir;
  report->max_steps = plan.max_steps;
  report->kill_seed = options.kill_seed;
  report->fault = ResumeFaultName(options.fault);

  // 1. The uninterrupted reference.
  report->reference_dir = ctx.work_dir + "/reference";
  ChildRun reference;
  auto t0 = Clock::now();
  LOCKSTEP_RETURN_IF_ERROR(RunChild(&ctx, "reference", report->reference_dir, {}, nullptr, &reference));
  report->reference_seconds = Since(t0);
  for (const auto& s : reference.result.value("saved_steps", json::array())) report->save_steps.push_back(s.get<int64_t>());
  report->save_io_calls = reference.save_io_calls;
  std::string saves;
  for (int64_t s : report->save_steps) saves += (saves.empty() ? "" : ",") + std::to_string(s);
  ctx.Say("reference: " + std::to_string(plan.max_steps) + " steps, saved at " + (saves.empty() ? "none" : saves) +
          ", " + Format("%.1f s", report->reference_seconds));

  std::vector<int64_t> saves_before_end;
  for (int64_t s : report->save_steps) if (s < plan.max_steps) saves_before_end.push_back(s);
  if ((options.every_checkpoint || options.kill_random > 0 || options.crash_points > 0) && saves_before_end.empty()) {
    return Status::InvalidArgument("--every-checkpoint, --kill-random and --crash-points need checkpoints to resume "
                                   "from, but the run "
                                   "saves only at its end (" + std::to_string(plan.max_steps) +
                                   " steps); pass --save_steps N with N < " + std::to_string(plan.max_steps));
  }

  // 2. The interrupted variants, each resumed to the end.
  std::vector<int64_t> interrupts = options.interrupt_at;
  if (interrupts.empty() && !options.every_checkpoint && options.kill_random == 0 && options.crash_points == 0) {
    interrupts = DefaultInterruptSteps(plan.updates_per_epoch, plan.max_steps);
  }
  for (int64_t k : interrupts) {
    VariantReport v = NewVariant(ctx, "interrupt-" + std::to_string(k));
    t0 = Clock::now();
    LOCKSTEP_RETURN_IF_ERROR(RunStopVariant(&ctx, v.name, {k}, &v));
    v.seconds = Since(t0);
    report->variants.push_back(std::move(v));
  }
  if (options.every_checkpoint) {
    VariantReport v = NewVariant(ctx, "every-checkpoint");
    t0 = Clock::now();
    LOCKSTEP_RETURN_IF_ERROR(RunStopVariant(&ctx, v.name, saves_before_end, &v));
    v.seconds = Since(t0);
    report->variants.push_back(std::move(v));
  }
  if (options.kill_random > 0) {
    VariantReport v = NewVariant(ctx, "kill-random");
    t0 = Clock::now();
    const double step_s = std::max(reference.mean_step_s, 50e-6), save_s = std::max(reference.mean_save_s, 50e-6);
    LOCKSTEP_RETURN_IF_ERROR(RunKillVariant(&ctx, *report, step_s, save_s, &v));
    v.seconds = Since(t0);
    report->variants.push_back(std::move(v));
  }
  if (options.crash_points > 0) {
    VariantReport v = NewVariant(ctx, "crash-points");
    t0 = Clock::now();
    LOCKSTEP_RETURN_IF_ERROR(RunCrashVariant(&ctx, *report, &v));
    v.seconds = Since(t0);
    report->variants.push_back(std::move(v));
  }

  // 3. Every variant against the reference.
  for (auto& v : report->variants) {
    LOCKSTEP_RETURN_IF_ERROR(CompareRuns(report->reference_dir, v.dir, &v.comparison));
  }
  return WriteJsonFile(ctx.work_dir + "/verify_report.json", VerifyResumeReportJson(*report));
}

json VerifyResumeReportJson(const VerifyResumeReport& r) {
  json variants = json::array();
  for (const auto& v : r.variants) {
    json interruptions = json::array();
    for (const auto& in : v.interruptions) {
      interruptions.push_back({{"how", in.how}, {"last_step", in.last_step},
                               {"during_checkpoint_write", in.during_checkpoint_write},
                               {"staging_leftovers", in.leftovers}, {"resumed_at", in.resumed_at},
                               {"skipped_checkpoints", in.skipped}});
    }
    variants.push_back({{"name", v.name}, {"dir", v.dir}, {"seconds", v.seconds},
                        {"interruptions", interruptions}, {"comparison", RunComparisonJson(v.comparison)}});
  }
  return {{"verdict", r.bit_exact() ? "bit-exact" : "diverged"},
          {"bit_exact", r.bit_exact()},
          {"work_dir", r.work_dir},
          {"reference", {{"dir", r.reference_dir}, {"max_steps", r.max_steps}, {"save_steps", r.save_steps},
                         {"save_io_calls", r.save_io_calls},
                         {"seconds", r.reference_seconds}}},
          {"kill_seed", r.kill_seed},
          {"fault_injected", r.fault},
          {"variants", variants}};
}

}  // namespace lockstep
