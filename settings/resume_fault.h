// Resume faults: FOR TESTING THE VERIFIER ONLY. Each value makes a resume deliberately skip
// restoring one piece of state, so tests can show that `lockstep verify-resume` catches it.
// A resume with a fault says so on stderr and in its "resume" record. Never set one in real
// training. The names are written here once: the CLI, the trainer and the verifier share them.
#pragma once

#include <string>
#include <vector>

namespace lockstep {

enum class ResumeFault {
  kNone,
  kRng,              // the CPU/CUDA generators keep their fresh-run state
  kSamplerPosition,  // the sampler restarts at epoch 0, position 0
  kOptimizer,        // AdamW moments and step counts start from zero
  kScheduler,        // the scheduler restarts at step 0
  kLossSums,         // tr_loss and total_loss restart at zero (HF's train_loss bug)
};

// Names as the CLI takes them: none, rng, sampler, optimizer, scheduler, loss-sums.
const char* ResumeFaultName(ResumeFault fault);
// False, leaving `*fault` alone, for a name that is none of those.
bool ParseResumeFault(const std::string& name, ResumeFault* fault);
std::vector<std::string> ResumeFaultNames();

}  // namespace lockstep
