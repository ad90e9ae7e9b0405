// What a resume by a smaller job left unread: a checkpoint saved by F ranks holds each rank's
// own state (its generators: HF's rng_state_<r>.pth, accelerate's random_states_<r>.pkl,
// Lockstep's rng_state_<r>.json), and a job of T < F ranks restores ranks 0..T-1's alone (one
// process of HF's Trainer none of them: it looks for rng_state.pth).
// Found from the step log's resume events that record the change (`world_size`: from, to), in
// the layouts whose readers are known (the Trainer's, accelerate's, Lockstep's): a script's own
// checkpoint may restore any file on any rank, so nothing is claimed of it.
// `lockstep inspect` and `lockstep diff` name them. No LibTorch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/step_log.h"

namespace lockstep {

struct UnrestoredState {
  int64_t after_step = 0;
  std::string checkpoint;  // the checkpoint the resume read, as the run directory names it
  int64_t from = 0, to = 0;
  std::vector<std::string> files;  // the saved ranks' files no rank of the resuming job read
  // A --world_invariant run of the reference trainer: the resume found every saved rank's
  // generators alike before restoring rank 0's on every rank, so nothing was lost.
  bool alike = false;
};

// Every resume of the run in `run_dir` (its step log `log`) by fewer ranks than saved the
// checkpoint it read, with the per-rank files of the ranks it lacked.
std::vector<UnrestoredState> FindUnrestoredState(const std::string& run_dir, const StepLogContents& log);

// One line saying it: "checkpoint-8 was saved by 2 ranks and resumed by 1 after step 8:
// rng_state_1.json saved and not restored (rank 1's generators; their data position went
// with them)".
std::string UnrestoredStateText(const UnrestoredState& u);

}  // namespace lockstep
