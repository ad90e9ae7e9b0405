// One writer per run directory. Training, resuming, overwriting and verify-resume's work
// directory each hold an exclusive flock(2) on <dir>/.lockstep.lock for as long as they
// write. A second writer is refused with the holder's PID and host. The kernel drops the
// lock when its holder dies, however it dies, so a stale lock never blocks anyone. Readers
// (inspect, diff) never take it.
#pragma once

#include <memory>
#include <string>

#include "formats/status.h"

namespace lockstep {

constexpr char kRunLockFile[] = ".lockstep.lock";

class RunLock {
 public:
  // Creates `dir` if needed and takes its lock for `command` ("lockstep train"). Busy,
  // naming the holder ("in use by PID 1234 on host-a (lockstep train, since ...)"), when
  // another process holds it; IOError when the lock file cannot be made.
  static Status Acquire(const std::string& dir, const std::string& command, std::unique_ptr<RunLock>* out);
  ~RunLock();  // releases the lock; the file stays, recording the last holder
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace lockstep
