// One checkpoint write at a time, off the training thread (--save_async, after CheckFreq
// and PyTorch DCP's async_save). The trainer snapshots its state at a step boundary, hands
// the copy of its tensors, the write, commit and rotation to Start, and goes on training
// (the copy overlaps the next step's forward and backward; its update waits for it); the result is collected
// on the training thread (Poll each step, Wait before the next save, at the end and on a
// signal), so the run's events and errors stay in order on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <string>

#include "formats/status.h"

namespace lockstep {

class BackgroundSave {
 public:
  BackgroundSave() = default;
  BackgroundSave(const BackgroundSave&) = delete;
  BackgroundSave& operator=(const BackgroundSave&) = delete;
  // Waits for a save still running: an error path must not leave a thread writing.
  ~BackgroundSave();

  // Whether a save was started and not yet collected.
  bool pending() const { return job_.valid(); }
  int64_t step() const { return step_; }

  // Starts, on its own thread, `fill` (the snapshot's copies of the live tensors) and then
  // `write` (which returns the committed directory in `*dir`) for checkpoint-`step`; a failed
  // fill is the save's outcome, and nothing is written. Requires !pending().
  void Start(int64_t step, std::function<Status()> fill, std::function<Status(std::string* dir)> write);

  // Blocks until the pending save's fill has ended, after which the tensors it copies may
  // change (the next optimizer update waits here). At once when none is pending.
  void WaitFilled();

  // True when the pending save has ended: `*status` and `*dir` get its outcome and it is no
  // longer pending. False, changing nothing, while it runs or when none is pending.
  bool Poll(Status* status, std::string* dir);

  // Blocks until the pending save ends and collects it as Poll does. Ok when none is pending.
  Status Wait(std::string* dir);

 private:
  struct Outcome {
    Status status = Status::Ok();
    std::string dir;
  };
  std::future<Outcome> job_;
  std::shared_future<void> filled_;
  int64_t step_ = -1;
};

}  // namespace lockstep
