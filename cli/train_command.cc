#include "cli/train_command.h"

#include "cli/training_commands.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/arg_check.h"
#include "cli/exit_codes.h"
#include "cli/launcher.h"
#include "cli/save_io_probe.h"
#include "cli/train_main.h"
#include "cli/training_flags.h"
#include "formats/json_file.h"
#include "process/job_env.h"
#include "trainer/progress.h"
#include "trainer/trainer.h"

namespace lockstep {
namespace {

// ("step", 12) becomes the line "step 12" on the event pipe verify-resume reads. A
// closed pipe must not kill the run, so SIGPIPE is ignored where this is used.
void WriteEvent(int fd, const char* event, int64_t step) {
  char line[64];
  const int n = std::snprintf(line, sizeof(line), "%s %lld\n", event, static_cast<long long>(step));
  if (n > 0) (void)!::write(fd, line, static_cast<size_t>(n));
}

// Preemption, as clusters send it: the first SIGTERM/SIGINT asks the trainer to stop after
// its current step with a checkpoint; a second one ends the process at once.
volatile std::sig_atomic_t g_stop_signal = 0;

void OnStopSignal(int sig) {
  if (g_stop_signal != 0) ::_exit(128 + sig);
  g_stop_signal = sig;
  static const char kNote[] =
      "\nlockstep train: signal received: finishing this step, then saving a checkpoint (send it again to exit at "
      "once)\n";
  (void)!::write(STDERR_FILENO, kNote, sizeof(kNote) - 1);
}

void InstallStopHandlers() {
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

const char* SignalName(int sig) { return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal"; }

void PrintSummary(const TrainResult& r) {
  // The speed is this process's own: a resume trained only the steps after its checkpoint
  // (train_results.json keeps HF's train_steps_per_second, which counts them all).
  std::printf("\nTraining finished: %lld steps, epoch %.2f, %.1f s on %s (%.1f steps/s)\n",
              static_cast<long long>(r.global_step), r.epoch, r.runtime_s, r.device.c_str(),
              r.runtime_s > 0 ? static_cast<double>(r.trained_steps) / r.runtime_s : 0.0);
  if (r.trained_steps != r.global_step) {
    std::printf("  %-22s %lld (after step %lld)\n", "trained here", static_cast<long long>(r.trained_steps),
                static_cast<long long>(r.global_step - r.trained_steps));
  }
  std::printf("  %-22s %.6f\n", "train_loss", r.train_loss);
  for (const char* key : {"eval_loss", "eval_accuracy", "perplexity"}) {
    if (r.eval_metrics.contains(key)) std::printf("  %-22s %.6f\n", key, r.eval_metrics[key].get<double>());
  }
  std::printf("  %-22s %s\n", "run directory", r.output_dir.c_str());
  std::printf("  %-22s %s/steps.jsonl.zst\n", "step log", r.output_dir.c_str());
  for (const auto& c : r.checkpoints) std::printf("  %-22s %s\n", "checkpoint", c.c_str());
  if (r.best_model_checkpoint) std::printf("  %-22s %s\n", "best checkpoint", r.best_model_checkpoint->c_str());
  if (!r.resumed_from.empty()) std::printf("  %-22s %s\n", "resumed from", r.resumed_from.c_str());
}

void PrintStopped(const TrainResult& r) {
  std::printf("\nStopped after step %lld (epoch %.2f) %s; the step log is flushed; continue with --resume.\n",
              static_cast<long long>(r.global_step), r.epoch,
              r.stopped_by_signal ? (std::string("on ") + SignalName(r.stopped_by_signal)).c_str() : "as asked");
  for (const auto& c : r.checkpoints) std::printf("  %-22s %s\n", "checkpoint", c.c_str());
}

nlohmann::json ResultJson(const TrainResult& r) {
  return {
      {"output_dir", r.output_dir},
      {"device", r.device},
      {"global_step", r.global_step},
      {"trained_steps", r.trained_steps},
      {"epoch", r.epoch},
      {"train_loss", r.train_loss},
      {"runtime_s", r.runtime_s},
      {"world_size", r.world_size},
      {"allreduce_s", r.allreduce_s},
      {"save_stall_s", r.save_stall_s},
      {"train_metrics", r.train_metrics},
      {"eval_metrics", r.eval_metrics},
      {"checkpoints", r.checkpoints},
      {"resumed_from", r.resumed_from},
      {"skipped_checkpoints", r.skipped_checkpoints},
      {"stopped_early", r.stopped_early},
      {"stopped_by_signal", r.stopped_by_signal},
      {"num_threads", r.num_threads},
      {"removed_leftovers", r.removed_leftovers},
      {"saved_steps", r.saved_steps},
      {"best_model_checkpoint", r.best_model_checkpoint ? nlohmann::json(*r.best_model_checkpoint) : nlohmann::json()}};
}

}  // namespace

std::function<int()> AddTrainCommand(CLI::App* app) {
  auto flags = std::make_shared<TrainFlags>();
  DefineTrainCommand(app, flags.get());
  return [flags]() {
    const auto fail = [&](const Status& st) { return ReportFailure("train", st, flags->json); };
    if (!flags->nproc_per_node.empty()) {
      int64_t nproc = 0;
      const Status st = ParseWholeNumber("--nproc_per_node", flags->nproc_per_node, 1, &nproc);
      if (!st.ok()) return fail(st);
      if (nproc > 1 && IsRankOfJob()) {
        return fail(Status::InvalidArgument("--nproc_per_node " + flags->nproc_per_node +
                                            " inside a launched job (RANK is set): launch with one or the other"));
      }
      if (nproc > 1) return LaunchAsRanks(static_cast<int>(std::min<int64_t>(nproc, 1024)), TrainingCommandLine());
    }
    TrainingArgs args;
    Status st = CollectTrainingArgs(flags->training, &args);
    TrainOptions options;
    if (st.ok() && !ParseResumeFault(flags->fault, &options.faults.resume)) {
      st = Status::InvalidArgument("--fault-inject " + flags->fault +
                                   ": expected one of rng, sampler, "
                                   "optimizer, scheduler, loss-sums");
    }
    int64_t stop_after = 0, event_fd = -1;
    if (st.ok() && !flags->stop_after_step.empty()) {
      st = ParseWholeNumber("--stop-after-step", flags->stop_after_step, 1, &stop_after);
    }
    if (st.ok() && !flags->event_fd.empty()) st = ParseWholeNumber("--event-fd", flags->event_fd, 0, &event_fd);
    CrashPoint crash;
    if (st.ok() && !flags->crash_at_io.empty()) st = ParseCrashPoint(flags->crash_at_io, &crash);
    if (!st.ok()) return fail(Status::InvalidArgument(st.message()));
    options.show_progress = !flags->quiet;
    options.interactive_progress = ProgressDisplay::StderrIsTerminal();
    if (flags->resume_option->count() > 0) options.resume_from = flags->resume;
    options.resume_override = flags->resume_override;
    options.record_steps = !flags->no_step_log;
    if (stop_after > 0) options.stop_after_step = stop_after;
    std::unique_ptr<SaveIoProbe> probe;
    if (event_fd >= 0) {
      std::signal(SIGPIPE, SIG_IGN);
      const int fd = static_cast<int>(event_fd);
      auto report = [fd](const char* event, int64_t step) { WriteEvent(fd, event, step); };
      probe = std::make_unique<SaveIoProbe>(report, crash);
      SetIoHook(probe.get());
      options.hooks.on_event = [report, p = probe.get()](const char* event, int64_t step) {
        p->OnEvent(event, step);
        report(event, step);
      };
    }
    InstallStopHandlers();
    options.stop_signal = &g_stop_signal;
    TrainResult result;
    st = RunTraining(args, options, &result);
    SetIoHook(nullptr);
    if (!st.ok()) return fail(st);
    if (RankOfThisProcess() != 0) {  // rank 0 speaks for a data-parallel job
    } else if (flags->json) {
      std::printf("%s\n", DumpJson(ResultJson(result), 2).c_str());
    } else if (result.stopped_early) {
      PrintStopped(result);
    } else {
      PrintSummary(result);
    }
    if (result.stopped_by_signal) {
      if (RankOfThisProcess() != 0) return 128 + result.stopped_by_signal;
      std::fprintf(stderr, "lockstep train: stopped by %s after step %lld: checkpoint saved, step log flushed\n",
                   SignalName(result.stopped_by_signal), static_cast<long long>(result.global_step));
      return 128 + result.stopped_by_signal;
    }
    return kExitOk;
  };
}

}  // namespace lockstep
