// Internal to replay/: running the child `lockstep train` processes of verify-resume's
// variants (child_runs.cc) and the variants that crash them (kill_variants.cc). The public
// API is verify_resume.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "replay/verify_resume.h"

namespace lockstep {
namespace verify {

using Clock = std::chrono::steady_clock;

// What one child process did, as seen from its events, exit and output.
struct ChildRun {
  nlohmann::json result;               // its --json output; empty when it was killed
  bool killed = false;                 // by us, as planned
  int64_t last_step = 0;               // the last "step" event
  int64_t last_save = -1;              // the last "save" event (a checkpoint write began)
  int64_t last_saved = -1;             // the last "saved" event (a checkpoint committed)
  int64_t resumed_at = -1;             // the "resumed" event's step; -1 when it started fresh
  std::vector<int64_t> save_io_calls;  // per save, in order: its write, fsync and rename calls
  std::vector<std::string> skipped;    // "warning: skipping ..." lines of its stderr
  double mean_step_s = 0;              // from its events: for timing kills
  double mean_save_s = 0;
};

// When to SIGKILL a child: `delay_s` after it reports event `event` for step `step`; or,
// with `io_call` > 0, the child kills itself after that I/O call of the save at `step`.
struct KillPlan {
  std::string event;
  int64_t step = 0;
  double delay_s = 0;
  int64_t io_call = 0;
  int rank = -1;  // a data-parallel job: the rank to SIGKILL (-1: the child itself)
};

// Everything the variants share.
struct Context {
  const VerifyResumeOptions& options;
  std::string work_dir;
  std::string config_path;
  int64_t max_steps = 0;
  int attempts = 0;                // numbers each child's log files
  double children_training_s = 0;  // the finished children's training loops (runtime_s)
  void Say(const std::string& line, bool transient = false) const {
    if (options.progress) options.progress(line, transient);
  }
};

// printf-style formatting of one number: Format("%.2f", 1.5).
std::string Format(const char* fmt, double a);

// Runs one child `lockstep train` in `dir` with `extra` flags, follows its events for the
// progress display, and SIGKILLs it when `kill` says so (or, with kill->io_call, has it
// kill itself at that I/O call). A child that fails on its own (non-zero exit, or silence
// past the timeout) is an error carrying its stderr.
Status RunChild(Context* ctx, const std::string& label, const std::string& dir, const std::vector<std::string>& extra,
                const KillPlan* kill, ChildRun* out);

// --resume (with the injected fault, when testing).
std::vector<std::string> ResumeFlags(const Context& ctx);
// The next process of a variant: it resumes when a valid checkpoint exists, and starts
// afresh otherwise (a kill before the first checkpoint), as a user would.
std::vector<std::string> ContinueFlags(const Context& ctx, const std::string& dir);
// The .staging-/.deleting- leftovers in `dir`, sorted.
std::vector<std::string> StagingLeftovers(const std::string& dir);
// Records where the process after an interruption resumed, and what it skipped.
void NoteResume(const ChildRun& run, VariantReport* v);

// kill-random: SIGKILLs at seeded moments (the timing is not reproducible).
Status RunKillVariant(Context* ctx, const VerifyResumeReport& report, double step_s, double save_s, VariantReport* v);
// crash-points: self-inflicted SIGKILLs right after seeded I/O calls of saves (exact).
Status RunCrashVariant(Context* ctx, const VerifyResumeReport& report, VariantReport* v);

}  // namespace verify
}  // namespace lockstep
