#include "settings/resume_fault.h"

namespace lockstep {

const char* ResumeFaultName(ResumeFault fault) {
  switch (fault) {
    case ResumeFault::kNone:
      return "none";
    case ResumeFault::kRng:
      return "rng";
    case ResumeFault::kSamplerPosition:
      return "sampler";
    case ResumeFault::kOptimizer:
      return "optimizer";
    case ResumeFault::kScheduler:
      return "scheduler";
    case ResumeFault::kLossSums:
      return "loss-sums";
  }
  return "none";
}

std::vector<std::string> ResumeFaultNames() {
  return {"none", "rng", "sampler", "optimizer", "scheduler", "loss-sums"};
}

bool ParseResumeFault(const std::string& name, ResumeFault* fault) {
  for (ResumeFault f : {ResumeFault::kNone, ResumeFault::kRng, ResumeFault::kSamplerPosition, ResumeFault::kOptimizer,
                        ResumeFault::kScheduler, ResumeFault::kLossSums}) {
    if (name == ResumeFaultName(f)) {
      *fault = f;
      return true;
    }
  }
  return false;
}

}  // namespace lockstep
