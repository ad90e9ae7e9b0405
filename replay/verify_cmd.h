// `lockstep verify-resume --cmd`: verify any trainer's resume. The user's command runs as the
// uninterrupted reference, then in interrupted variants: stopped by SIGTERM once its first
// checkpoint exists, and SIGKILLed at seeded moments. Each is resumed with the resume
// argument (pointing at the newest checkpoint-N the interrupted run left) and compared
// with the reference as `lockstep diff` compares runs: step by step when the runs are
// recorded (StepRecorder, lockstep.Recorder), else by HF's log_history, the checkpoints
// both hold, and the results files. No LibTorch here.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/run_divergence.h"
#include "formats/status.h"

namespace lockstep {

struct VerifyCmdOptions {
  std::string command;  // a shell command; "{output_dir}" is replaced by each run's directory,
                        // "{world}" (or "{nproc}") by the run's world size
  int64_t world = 1;    // the world size of the reference and of every variant but --world's
  // --world A:B: a variant stopped by SIGTERM after its first checkpoint at A (= world) and
  // resumed at B; the command takes the size through {world}.
  std::vector<std::pair<int64_t, int64_t>> worlds;
  std::string resume_arg;  // appended to resume; "{checkpoint}" is replaced by the checkpoint's path
  std::string work_dir;    // runs go to work_dir/reference, work_dir/sigterm, work_dir/kill-1, ...
  int kill_random = 2;     // SIGKILL variants, each at a seeded moment after a checkpoint exists
  uint64_t kill_seed = 0;
  double timeout_s = 900;  // a run still going after this long is killed, and that is an error
  std::function<void(const std::string& line)> progress;
};

struct VerifyCmdVariant {
  std::string name;          // "sigterm", "kill-1", "world-2-to-1"
  std::string how;           // "SIGTERM 12 ms after checkpoint-10 appeared"
  std::string resumed_from;  // the checkpoint the resume was pointed at
  // Why the audit says a resume from that checkpoint cannot continue the run exactly
  // (saved with save_only_model: no optimizer, scheduler or RNG state); empty when it can.
  std::vector<std::string> not_resumable_because;
  // Empty when the resume trained steps; else why the variant proves nothing (the kill
  // landed after the run's last checkpoint: the resume had no step left to train).
  std::string not_counted;
  RunDiff diff;  // the resumed run against the reference
};

struct VerifyCmdReport {
  std::string reference_dir;
  std::vector<VerifyCmdVariant> variants;
  int64_t counted() const;  // the variants whose resume trained steps
  // True when at least one variant counted and every counted one is identical: never a
  // verdict over zero comparisons.
  bool bit_exact() const;
};

// Runs the reference and the variants, then writes work_dir/verify_report.json. A command
// that fails (non-zero exit, other than by the interruption: InvalidArgument, the input is
// at fault), a run that leaves no checkpoint to resume from, and a reference that is not a
// run `lockstep diff` can read are errors naming the run and its log file.
Status VerifyResumeCommand(const VerifyCmdOptions& options, VerifyCmdReport* report);

// "" when the save into `checkpoint` finished, else why not, judged by what its writer
// commits last: Lockstep's manifest (the directory is renamed into place whole); for the HF
// Trainer, which writes checkpoint-N in place, trainer_state.json after the weights,
// optimizer and RNG (one stopped during a save has the rest without it, or that file cut
// short), and no JIT save's checkpoint-is-incomplete.txt; and the weights its resume
// requires (formats' MissingModelWeights, the audit's rule too). A script's own format cannot be
// judged and is taken as it is.
// `whole`, when given, is the file set (formats/run_layout.h's CheckpointFileSet) every
// checkpoint of the finished reference run holds: a checkpoint lacking one of those files is
// a save that never finished, whatever its format (PEFT writes README.md first, a script's
// own format anything).
std::string UnfinishedSave(const std::string& checkpoint, const std::set<std::string>* whole = nullptr);

nlohmann::json VerifyCmdReportJson(const VerifyCmdReport& report);
std::string VerifyCmdReportText(const VerifyCmdReport& report);

}  // namespace lockstep
