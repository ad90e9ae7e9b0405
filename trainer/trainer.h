// The reference trainer: a deterministic training run with the Hugging Face Trainer's
// semantics (steps, epochs, accumulation, schedulers, evaluation, checkpoints, rotation),
// recording every optimizer step in the step log. This header is LibTorch-free so the CLI
// and tests that only drive runs compile fast.
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/step_log.h"
#include "settings/resume_fault.h"
#include "settings/training_args.h"

namespace lockstep {

// How a caller observes and steers a run from outside its loop: the tools built on the
// trainer (replay, verify-resume, bench) and tests. None of it is a setting of the run.
struct TrainHooks {
  // Seconds on a monotonic clock; the step log's wall_time comes from it. Tests inject a
  // fake clock to show two runs' logs are byte-identical; unset means the steady clock.
  std::function<double()> clock;
  // Called as the run goes: ("step", s) after step s is logged, ("save", s) before
  // checkpoint-s is written and ("saved", s) after it is committed. verify-resume uses
  // these to time its kills; they must not throw.
  std::function<void(const char* event, int64_t step)> on_event;
  // Tests: runs on a --save_async save's thread before it copies the tensors, to make the
  // copy slow and show that the next update waits for it.
  std::function<void()> before_snapshot_copy;

  // Replay (replay/step_replay.h drives it). As step s begins, `replay_step_begin(s, &logged)` gives
  // the record the log holds for s (null for none): the run restores the full generator
  // states it carries and trains on its sample ids. After the step, `replay_step_end` sees
  // the recomputed record; setting `*stop` ends the run there.
  std::function<Status(int64_t step, StepRecord* logged)> replay_step_begin;
  std::function<Status(const StepRecord& record, bool* stop)> replay_step_end;
  bool write_checkpoints = true;  // false: checkpoints and results files are not written
  // Module tracing: during step `trace_step`, each module's forward output and then each
  // parameter's gradient go to `on_trace` (formats/module_trace.h entries).
  int64_t trace_step = 0;
  std::function<void(const nlohmann::json& entry)> on_trace;
};

// TESTING ONLY: faults injected so tests can show that Lockstep's checks catch them. Never
// set them in real training.
struct TrainFaults {
  ResumeFault resume = ResumeFault::kNone;  // a resume that restores one piece wrongly
  // While tracing, scales this module's output by (1 + 2^-23), as a changed reduction order
  // inside it would move its bits, so tests can show the trace diff naming it.
  std::string numerics_module;
};

// How to run: the user's choices that are not training settings (TrainingArgs holds those).
struct TrainOptions {
  bool show_progress = true;          // the display on stderr
  bool interactive_progress = false;  // redraw one line in place (stderr is a terminal)
  StepLogOptions step_log;
  // False only to measure what recording costs (`lockstep bench`): no step records are
  // built or written (the log holds its header alone), so the run cannot be resumed or
  // verified. Checkpoints refuse to be taken without it.
  bool record_steps = true;
  // Full RNG states go into the step record every N steps (and the first); the other
  // records carry 128-bit digests. See formats/doc/step_log_format.md for the sizes.
  int64_t rng_full_state_every = 100;
  // HF's resume_from_checkpoint. Unset: a fresh run. "": the newest valid checkpoint in
  // output_dir (invalid newer ones are skipped with a warning). Otherwise that checkpoint.
  std::optional<std::string> resume_from;
  // Resume even though run-deciding settings changed. The run is then a different run:
  // every later step record carries "resume_override": true.
  bool resume_override = false;
  bool warn_on_override = true;  // say on stderr that an overridden resume is a different run
  // Stop after this step as a preempted run would: a checkpoint is saved at it (unless
  // the schedule just saved one) and no results files are written. For resume testing.
  std::optional<int64_t> stop_after_step;
  // Preemption. When the flag this points at becomes non-zero (a SIGTERM/SIGINT handler
  // stores the signal number), the run finishes its current optimizer step, saves a
  // checkpoint there, flushes the step log and stops: TrainResult::stopped_by_signal.
  const volatile std::sig_atomic_t* stop_signal = nullptr;

  TrainHooks hooks;
  TrainFaults faults;
};

struct TrainResult {
  std::string output_dir;
  std::string device;  // "cpu" or "cuda:0"
  int64_t global_step = 0;
  int64_t trained_steps = 0;  // the optimizer steps this process trained: a resume's are those after its checkpoint
  double epoch = 0;
  double train_loss = 0;  // mean of the per-step losses, as HF's train_loss
  double runtime_s = 0;
  double recording_s = 0;                // of runtime_s, the loop's time building and queueing step records
  double save_stall_s = 0;               // of runtime_s, the loop's time held up by checkpoint saves
  double final_save_wait_s = 0;          // of runtime_s, the end's wait for the last --save_async save
  int64_t world_size = 1;                // processes of the data-parallel job
  double allreduce_s = 0;                // of runtime_s, this rank's time in the gradient all-reduces
  nlohmann::json train_metrics;          // train_results.json
  nlohmann::json eval_metrics;           // eval_results.json (empty without an eval split)
  std::vector<std::string> checkpoints;  // committed checkpoint dirs left after rotation
  std::optional<std::string> best_model_checkpoint;
  std::string resumed_from;  // the checkpoint a resumed run continued, "" for a fresh run
  // Newer checkpoints an auto-resume passed over: "path: reason".
  std::vector<std::string> skipped_checkpoints;
  bool stopped_early = false;  // stop_after_step or a signal ended the run; no results were written
  int stopped_by_signal = 0;   // the signal that stopped it (SIGTERM, SIGINT), 0 for none
  int64_t num_threads = 0;     // the intra-op thread count the run used
  // Staging directories of crashed saves that this start removed (under the run lock).
  std::vector<std::string> removed_leftovers;
  std::vector<int64_t> saved_steps;  // every checkpoint this process wrote, rotated ones too
};

// LibTorch's intra-op thread count when none is set (OMP_NUM_THREADS, else the cores).
int64_t DefaultNumThreads();

// Whether this LibTorch sees a CUDA device.
bool CudaIsAvailable();

// Validates `args`, trains, and writes the run directory. Errors (bad settings, an
// occupied output_dir, I/O failures) come back as a Status; nothing throws.
Status RunTraining(const TrainingArgs& args, const TrainOptions& options, TrainResult* result);

}  // namespace lockstep
