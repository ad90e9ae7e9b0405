// StepRecorder: Lockstep's step log for any LibTorch training loop, so `lockstep diff`,
// `inspect` and `verify-resume` can say where two runs part and whether a resume was
// exact. It writes the reference trainer's format (formats/doc/step_log_format.md):
// a header with the settings you name, then one record per optimizer step with the
// sample ids, the generator states as the step began (CPU, and CUDA when there is one:
// captured for you), the loss, lr and gradient norm, and their float bits.
//
//   std::unique_ptr<lockstep::StepRecorder> rec;
//   lockstep::Status st = lockstep::StepRecorder::Create("runs/a", {{"lr", 1e-3}}, {}, &rec);
//   if (!st.ok()) { std::cerr << st.ToString() << "\n"; return 1; }
//   for (step = 1; ...; ++step) {
//     rec->BeginStep();                     // before the step's first random draw
//     ... forward, backward, optimizer step ...
//     rec->EndStep({step, {batch_ids}, loss, lr, grad_norm});
//     if (saving) { save(...); rec->Flush(); }   // the log durably covers the checkpoint
//   }
//   rec->Close();
//
// Part of Lockstep's installed API: find_package(Lockstep), target Lockstep::recorder, which
// links LibTorch to capture the generator states; this header includes none of it.
// nlohmann::json is part of the API (the settings of Create; see lockstep/step_record.h).
// A StepRecorder is used from one thread, the loop's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "lockstep/status.h"
#include "lockstep/step_record.h"  // StepRecord: fill step, batches, loss, lr, grad_norm (epoch)

namespace lockstep {

struct RecorderOptions {
  // Every N-th step (and step 1) carries the full generator states, to restore from; the
  // others their 128-bit digests (what a comparison needs, at 1/30 of the size).
  int64_t rng_full_state_every = 100;
  // Records per zstd frame: a killed process loses at most the records of an unfinished
  // frame (Flush ends one early).
  int records_per_frame = 16;
};

class StepRecorder {
 public:
  // Starts run_dir/steps.jsonl.zst (creating run_dir). Its header holds `settings`, a JSON
  // object of whatever decides your run, under "training_args" (so `lockstep diff` lists
  // the ones that differ; `{}`: none). InvalidArgument when `settings` is not an object,
  // an option is below 1, or run_dir already holds a log (resume it instead).
  // The recorder is run_dir's one writer until it is closed or destroyed: Busy, naming the
  // holder, while another process or recorder writes there (run_dir/.lockstep.lock, the
  // lock `lockstep train` takes; the kernel drops it when its holder dies).
  static Status Create(const std::string& run_dir, const nlohmann::json& settings, const RecorderOptions& options,
                       std::unique_ptr<StepRecorder>* out);

  // Continues the log of run_dir after its record of `step`, for a run resumed from a
  // checkpoint saved at `step` (0: from the start). Records after it, which a killed run
  // wrote past its checkpoint, are cut off; a "resume" event marks the place. NotFound
  // when there is no log or it has no record of `step`; Busy as for Create.
  static Status Resume(const std::string& run_dir, int64_t step, const RecorderOptions& options,
                       std::unique_ptr<StepRecorder>* out);

  ~StepRecorder();  // closes, best effort

  // Captures the generator states as the step begins: call it before the step's first
  // random draw (dropout, sampling). Cheap: the digest is taken off the training thread.
  void BeginStep();

  // Records the step, with the states BeginStep captured: the loop fills `record`'s step,
  // batches, loss, lr and grad_norm (and epoch, when it knows it); the other fields are the
  // writer's. InvalidArgument when BeginStep was not called for it, the step does not follow
  // the last one recorded, or the recorder is closed; an IOError of an earlier background
  // write is returned here. Taken by value: std::move a record you built to hand over its
  // batches without a copy.
  Status EndStep(StepRecord record);

  // Writes every recorded step and fsyncs: call it when you save a checkpoint, so the log
  // covers it and a resume from it continues the log at a frame boundary.
  Status Flush();

  // Flushes, closes and lets go of run_dir; later calls fail.
  Status Close();

 private:
  class Impl;  // the log's writer and the loop's position (recorder/step_recorder.cc)
  explicit StepRecorder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep
