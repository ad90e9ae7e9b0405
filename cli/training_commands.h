// The training subcommands' flags, defined once and torch-free: `lockstep-train` parses and
// runs them; `lockstep` answers `--help` for them without loading LibTorch (50 ms instead of
// 0.6 s) and hands everything else to the helper (training_handoff.h).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/training_flags.h"

namespace lockstep {

// `lockstep train`.
struct TrainFlags {
  TrainingFlags training;
  std::string resume;
  CLI::Option* resume_option = nullptr;
  bool resume_override = false;
  std::string stop_after_step;
  std::string fault = "none";
  std::string event_fd;
  std::string crash_at_io;
  std::string nproc_per_node;
  bool no_step_log = false;
  bool json = false;
  bool quiet = false;
};

// `lockstep verify-resume`.
struct VerifyFlags {
  TrainingFlags training;
  std::vector<std::string> interrupt_at;
  std::vector<std::string> world;  // --world A:B
  bool every_checkpoint = false;
  std::string kill_random;
  std::string crash_points;
  std::string kill_seed = "0";
  std::string nproc_per_node;
  std::string cmd, resume_arg;  // verify any trainer: its command and how it resumes
  std::string fault = "none";
  std::string report;  // --report FILE.html: the page of report/report.h
  bool json = false;
  bool quiet = false;
};

// `lockstep replay`.
struct ReplayFlags {
  std::string run, from, steps, device, num_threads;  // steps "": every logged step after --from
  std::string atol, rtol, ulp;
  std::string trace;
  std::string numerics_fault;  // hidden, testing only
  std::string nproc_per_node;
  bool json = false;
};

// Each adds its subcommand and flags to `app`, bound to `*flags` (which must outlive parsing).
CLI::App* DefineTrainCommand(CLI::App* app, TrainFlags* flags);
CLI::App* DefineVerifyResumeCommand(CLI::App* app, VerifyFlags* flags);
CLI::App* DefineReplayCommand(CLI::App* app, ReplayFlags* flags);

}  // namespace lockstep
