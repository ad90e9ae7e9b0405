// Lockstep's public C++ API for recording your own LibTorch training loop: StepRecorder
// writes the step log (one record per optimizer step: sample ids, generator states, loss
// and grad-norm bits, lr) that `lockstep diff`, `inspect` and `verify-resume --cmd` read.
// Installed by `cmake --install`; find_package(Lockstep), target Lockstep::recorder.
// The contract of each method is in recorder/step_recorder.h.
#pragma once

#include "lockstep/status.h"
#include "recorder/step_recorder.h"
