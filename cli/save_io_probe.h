// The train command's I/O probe for verify-resume (formats/io.h). While a checkpoint save
// runs (between the trainer's "save" and "saved" events) it counts the write, fsync and
// rename calls of the checkpoint (not of the step log), reports the count on the event pipe ("save-io 19"), and, when
// armed with a crash point, SIGKILLs its own process right after the K-th call of the save at step S: a crash at an
// exact I/O point, the same one on every rerun.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "formats/io.h"
#include "formats/status.h"

namespace lockstep {

struct CrashPoint {
  int64_t save_step = 0;  // the save (checkpoint-S) to crash in
  int64_t io_call = 0;    // after its K-th write, fsync or rename (1-based)
};

// "S:K" -> {S, K}; InvalidArgument naming the flag otherwise.
Status ParseCrashPoint(const std::string& text, CrashPoint* out);

class SaveIoProbe : public IoHook {
 public:
  // `report` hears ("save-io", calls) after every save; `crash` (io_call 0: none) arms it.
  SaveIoProbe(std::function<void(const char*, int64_t)> report, CrashPoint crash)
      : report_(std::move(report)), crash_(crash) {}

  // Feed it the trainer's events: "save" starts counting, "saved" reports and stops.
  void OnEvent(const char* event, int64_t step);

  int Before(IoOp, const std::string&) override { return 0; }
  void After(IoOp op, const std::string& path) override;

 private:
  std::function<void(const char*, int64_t)> report_;
  CrashPoint crash_;
  // Atomic: a --save_async save does its I/O on a background thread, while the training
  // thread sends the events.
  std::atomic<int64_t> saving_step_{-1};  // -1: not inside a save
  std::atomic<int64_t> calls_{0};
};

}  // namespace lockstep
