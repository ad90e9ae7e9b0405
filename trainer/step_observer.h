// One optimizer step as the loop builds it (StepWork, train_step.cc), and what watches or
// steers a run from outside the loop: a StepObserver, called at the step's phase
// boundaries and as a resume restores the run. The loop knows its observers by this
// interface only; the trainer has three: a replay of logged steps (logged_step_replay.cc), which
// sets the generators and sample ids a step starts from and judges the record it ends
// with; a module trace of one step (module_tracer.cc); and, for tests, a resume that
// restores one piece of state wrongly (resume_fault.cc). Internal to trainer/.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "formats/step_record.h"
#include "settings/resume_fault.h"

namespace lockstep {

class DataParallelJob;
class Model;
struct StateFile;
struct TrainHooks;

struct StepWork {
  int64_t epoch = 0, update = 0, step = 0;
  int64_t window = 0, first_mb = 0;  // the accumulation window: its size and first micro-batch
  int64_t window_items = 0;          // the samples (tokens, for gpt) the window's losses average over
  bool recording = false;            // the record is built (for the log, or for an observer)
  StepRecord record;                 // the step record as it is built
  GeneratorStates other_rng_states;  // a rank other than 0: its generator states, for rank 0's record
  std::vector<at::Tensor> ids;       // each micro-batch's sample ids
  at::Tensor step_loss, grad_norm;
  double lr = 0;
};

class StepObserver {
 public:
  virtual ~StepObserver() = default;
  // The observer reads the step record (RecordReady), so it is built even when the run
  // writes no step log.
  virtual bool ReadsRecords() const { return false; }
  // A resume is about to restore the run through `files` (trainer/checkpoint_io.h), in
  // their order; an observer may wrap a file's load.
  virtual void RestoresState(std::vector<StateFile>* /*files*/) {}
  // Before the step's first draw from any generator; the record takes the generator
  // states right after.
  virtual Status StepBegins(StepWork* /*w*/) { return Status::Ok(); }
  // The window's sample ids are drawn and in the record; w->ids is what the step trains on.
  virtual void BatchesDrawn(StepWork* /*w*/) {}
  // Micro-batch k's forward and backward are about to run.
  virtual void MicroBatchBegins(const StepWork& /*w*/, int64_t /*k*/) {}
  // The gradients are averaged over the ranks and not yet clipped.
  virtual void GradientsReady(const StepWork& /*w*/) {}
  // The step's record is complete (in a job, rank 0's holds every rank's part) and about to
  // be logged. Every rank calls it.
  virtual Status RecordReady(const StepWork& /*w*/) { return Status::Ok(); }
  // The run ends after this step (a replay that has judged enough).
  virtual bool StopAfterStep() const { return false; }
};

// A run's observers, each phase called on every one in the order they were added.
class StepObservers {
 public:
  void Add(std::unique_ptr<StepObserver> observer) { all_.push_back(std::move(observer)); }
  bool ReadRecords() const;
  void RestoresState(std::vector<StateFile>* files);
  Status StepBegins(StepWork* w);
  void BatchesDrawn(StepWork* w);
  void MicroBatchBegins(const StepWork& w, int64_t k);
  void GradientsReady(const StepWork& w);
  Status RecordReady(const StepWork& w);
  bool StopAfterStep() const;

 private:
  std::vector<std::unique_ptr<StepObserver>> all_;
};

// A replay (TrainHooks::replay_step_begin/end): each step starts from the generator states
// and sample ids its logged record holds (rank r from the record's rank r part) and its
// recomputed record goes to the judge; the ranks stop together where it says.
std::unique_ptr<StepObserver> MakeLoggedStepReplay(const TrainHooks& hooks, DataParallelJob* job, bool cuda,
                                                   int64_t train_samples);

// A module trace of step `step`: each module's forward output, then each parameter's
// gradient before clipping, to `on_trace` (formats/module_trace.h entries). TESTING ONLY:
// `fault_module`'s output is scaled by (1 + 2^-23) (TrainFaults::numerics_module).
std::unique_ptr<StepObserver> MakeModuleTracer(std::shared_ptr<Model> model, int64_t step,
                                               std::function<void(const nlohmann::json&)> on_trace,
                                               std::string fault_module);

// What a resume fault spoils, beyond skipping a file's load: the scheduler and HF's loss
// sums are loaded, then started over, so the file's own checks still run.
struct ResumeFaultTargets {
  std::string rng_file;  // this rank's generator file (DataParallelJob::RngFileName)
  std::function<void()> restart_scheduler;
  std::function<void()> restart_loss_sums;
};

// TESTING ONLY (TrainFaults::resume): a resume that restores the one piece of state `fault`
// names wrongly, and says so on stderr, so tests can show that verify-resume catches it.
std::unique_ptr<StepObserver> MakeResumeFault(ResumeFault fault, ResumeFaultTargets targets);

}  // namespace lockstep
