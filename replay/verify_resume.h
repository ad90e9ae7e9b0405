// `lockstep verify-resume`: prove that resuming a run gives the same run. Runs the
// uninterrupted reference, then interrupted variants (stopped at chosen steps, resumed from
// each checkpoint in turn, or SIGKILLed at seeded random moments), each a real child
// `lockstep train` process resumed with --resume, and compares every variant with the
// reference bit for bit (DiffRuns, diff/run_divergence.h, with no tolerance: one engine with `lockstep diff`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/run_divergence.h"
#include "formats/status.h"
#include "settings/resume_fault.h"
#include "settings/training_args.h"

namespace lockstep {

struct VerifyResumeOptions {
  std::string lockstep_binary;  // the `lockstep` executable that runs each child
  // When set, each child is forked from this process and runs `run_child(argv)` (argv as
  // for lockstep_binary) instead of exec'ing it: a zygote, so a child does not load LibTorch
  // again (0.8 s here). Only for CPU runs: forking after CUDA is initialized is unsafe.
  std::function<int(const std::vector<std::string>& argv)> run_child;
  TrainingArgs args;                       // args.output_dir is the work directory for every run
  std::vector<int64_t> interrupt_at;       // one variant per step K: stop after K, then resume
  bool every_checkpoint = false;           // one variant stopped and resumed at every save step
  int kill_random = 0;                     // one variant SIGKILLed this many times, then finished
  int crash_points = 0;                    // one variant that kills itself this many times, each
                                           // right after an exact I/O call of a checkpoint save
  uint64_t kill_seed = 0;                  // seeds both plans: which saves and steps, which I/O call.
                                           // Crash points replay exactly; kill-random's timing does not
  ResumeFault fault = ResumeFault::kNone;  // TESTING ONLY: passed to every resume
  double child_timeout_s = 900;            // a child silent this long is killed, and that is an error
  // > 1: every child is a data-parallel job of this many ranks (lockstep train
  // --nproc_per_node); each kill-random kill SIGKILLs one rank of it, a seeded one.
  int nproc_per_node = 1;
  // --world A:B: one variant per pair, a job of A ranks stopped at the first interruption
  // step and resumed as a job of B (per_device_train_batch_size x A / B each: the global
  // batch kept). Every pair's A is the reference's size. A run without world_invariant is
  // resumed with --resume-override, and its variant says why it cannot be exact.
  std::vector<std::pair<int64_t, int64_t>> worlds;
  // Progress lines; `transient` ones may be redrawn in place (a terminal), the others stay.
  std::function<void(const std::string& line, bool transient)> progress;
};

// One interruption of a variant and what the next process made of it.
struct Interruption {
  std::string how;                       // "stopped after step 100", "SIGKILL 0.8 ms after save 200"
  int64_t last_step = 0;                 // the last step the killed process reported
  bool during_checkpoint_write = false;  // killed between "save s" and "saved s"
  std::vector<std::string> leftovers;    // staging directories the kill left behind
  int64_t resumed_at = -1;               // the step the next process resumed from; 0: fresh start
  std::vector<std::string> skipped;      // newer checkpoints the resume passed over, with reasons
};

struct VariantReport {
  std::string name;  // "interrupt-100", "every-checkpoint", "kill-random", "crash-points", "world-2-to-3"
  std::string note;  // what the verdict rests on beyond the comparison ("" for none)
  std::string dir;
  std::vector<Interruption> interruptions;
  RunDiff diff;  // against the reference, bit for bit (DiffRuns with no tolerance)
  double seconds = 0;
};

struct VerifyResumeReport {
  std::string work_dir;
  std::string reference_dir;
  int64_t max_steps = 0;
  std::vector<int64_t> save_steps;     // the steps at which the reference saved
  std::vector<int64_t> save_io_calls;  // per save: its write, fsync and rename calls
  double reference_seconds = 0;
  // The sum of the finished children's training loops (their runtime_s): the work
  // verification cannot avoid; its wall time over this is its overhead.
  double children_training_s = 0;
  uint64_t kill_seed = 0;
  std::string fault = "none";
  std::vector<VariantReport> variants;
  bool bit_exact() const;
};

// The default variants when none is asked for: the middle of the first epoch and the first
// epoch boundary, those that fall inside the run.
std::vector<int64_t> DefaultInterruptSteps(int64_t updates_per_epoch, int64_t max_steps);

// Runs everything and fills `*report`. A Status error means verification could not be
// done (bad settings, an occupied work directory, a child that failed on its own); a
// divergence is not an error: see report->bit_exact().
Status VerifyResume(const VerifyResumeOptions& options, VerifyResumeReport* report);

nlohmann::json VerifyResumeReportJson(const VerifyResumeReport& report);

// The verdict of the whole verification ("BIT-EXACT: every resumed run is the uninterrupted
// run", or DIVERGED), and of one variant ("BIT-EXACT", "DIVERGED", or "NOTHING COMPARED").
std::string VerifyResumeVerdict(const VerifyResumeReport& report);
std::string VariantVerdict(const VariantReport& variant);

}  // namespace lockstep
