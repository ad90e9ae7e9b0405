// The checkpoints a run directory holds, whatever wrote them: the Trainer's and Lockstep's
// checkpoint-N, accelerate's checkpoints/checkpoint_<i>, Lightning's .ckpt files and DCP
// directories. One listing for the audit and for telling a run from one checkpoint.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "formats/status.h"

namespace lockstep {

struct RunCheckpoint {
  int64_t step = -1;     // its global step from its name; -1 where the name gives none (accelerate)
  int64_t order = 0;     // its place among the run's saves: the step, else accelerate's <i>
  std::string name;      // relative to the run: "checkpoint-200", "checkpoints/checkpoint_0",
                         // "lightning_logs/version_0/checkpoints/epoch=0-step=4.ckpt", "step-2"
  std::string path;      // run_dir + "/" + name
  bool is_file = false;  // a Lightning .ckpt (or anything named checkpoint-N that is not a directory)
};

// The checkpoints of `run_dir`, in save order:
//   checkpoint-N                      HF's and Lockstep's, and a script's own format: every entry so named,
//                                     whatever it is (a file or a broken link is the audit's to report)
//   checkpoints/checkpoint_<i>        accelerate's automatic naming (checkpoint_<i> when run_dir is
//                                     that checkpoints/ folder)
//   *.ckpt                            Lightning's, in run_dir, run_dir/checkpoints, or
//                                     lightning_logs/version_<n>/checkpoints (step from "step=S")
//   any other subdirectory holding a DCP checkpoint (step from its name's last number)
// IOError naming run_dir when it cannot be listed.
Status ListRunCheckpoints(const std::string& run_dir, std::vector<RunCheckpoint>* out);

// True when `dir` is a run's output directory rather than one checkpoint: it holds a step
// log or checkpoints ListRunCheckpoints finds (an HF output_dir after save_model() and
// save_state() also holds a model and trainer_state.json at its top), or trainer_state.json
// without the files of a checkpoint.
bool IsRunDirectory(const std::string& dir);

// The files a save wrote into `checkpoint_dir`, as every save of the same run writes them
// (what one checkpoint of a run holds and another lacks is missing from it): paths relative
// to it, DeepSpeed's tag directory "global_step<N>" made "global_step*", and left out: each
// process's own generator files (rng_state.pth, rng_state_<r>.pth/.json, random_states_<r>.pkl,
// DCP's __<r>_<n>.distcp, DeepSpeed's zero_pp_rank_<r>_*: a job's size may change between
// saves, and the layouts' own rules count those), hidden files, and the JIT save's marker.
std::set<std::string> CheckpointFileSet(const std::string& checkpoint_dir);

// The number that ends `name` ("step-12" -> 12, "epoch=0-step=4.ckpt" -> 4, "global_step100" -> 100), or -1.
int64_t TrailingNumber(const std::string& name);

}  // namespace lockstep
