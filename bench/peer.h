// The Python peer (bench/python_peer.py) as a child process the suites ask for one
// measurement at a time, so its runs interleave with Lockstep's in the same benchmark run.
// No LibTorch here: the peer brings its own, the version this build links (bench/CMakeLists.txt).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

class PythonPeer {
 public:
  // The shared peer, started on first use: the interpreter is $LOCKSTEP_PYTHON (default: the
  // Python whose torch this build links: the wheel's .venv/bin/python, or Debian's
  // /usr/bin/python3 with python3-torch), the script $LOCKSTEP_PYTHON_PEER (default: the one
  // in the source tree). Null, with the reason in `*why`, when it cannot run (no torch
  // there): the suites then skip the peer's benchmarks.
  static PythonPeer* Shared(std::string* why);

  ~PythonPeer();

  // Sends one request (see python_peer.py) and waits for its measurement in `*seconds`, and
  // the whole answer in `*answer` when given. An error the peer reports, or a peer that
  // died, is an IOError with its text.
  Status Measure(const nlohmann::json& request, double* seconds, nlohmann::json* answer = nullptr);

 private:
  PythonPeer(pid_t pid, int to_peer, int from_peer) : pid_(pid), to_peer_(to_peer), from_peer_(from_peer) {}
  static Status Start(std::unique_ptr<PythonPeer>* out);
  pid_t pid_;
  int to_peer_, from_peer_;
  std::string pending_;  // read from the peer past the last answer
};

}  // namespace lockstep
