// Re-executing logged steps: load a checkpoint, run the steps after it with the sample ids
// and generator states the step log recorded, and hand each recomputed record to the
// caller, who judges it (replay/step_replay_check.h). LibTorch-free header; the work
// happens in a scratch copy, so the run directory is never written.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/step_record.h"

namespace lockstep {

struct ReplayRequest {
  std::string run_dir;      // the run whose log is replayed; read only
  std::string checkpoint;   // a checkpoint directory of that run: the state replay starts from
  int64_t steps = 1;        // how many steps after the checkpoint
  std::string device;       // "cpu" or "cuda"; "" replays on the device the checkpoint names
  int64_t num_threads = 0;  // intra-op threads; 0 replays with the checkpoint's
  // As in TrainHooks (trainer/trainer.h): the logged record for a step, and each
  // recomputed record (set *stop to end the replay there).
  std::function<Status(int64_t step, StepRecord* logged)> step_begin;
  std::function<Status(const StepRecord& record, bool* stop)> step_end;
  int64_t trace_step = 0;  // record a module trace of this step (0: none)
  std::function<void(const nlohmann::json& entry)> on_trace;
  std::string numerics_fault_module;  // TESTING ONLY, see TrainFaults
};

struct ReplayRunInfo {
  int64_t from_step = 0;  // the checkpoint's step
  std::string device;     // where it ran: "cpu", "cuda:0"
  int64_t num_threads = 0;
  double seconds = 0;  // the whole replay, setup included
};

// Verifies the checkpoint's checksums, copies it and the step log to a scratch directory,
// resumes there and runs `steps` steps. Errors (a damaged checkpoint, a step log that is
// not the one the checkpoint saw, LibTorch failures) are a Status naming the file.
Status ReplayRunSteps(const ReplayRequest& request, ReplayRunInfo* info);

}  // namespace lockstep
