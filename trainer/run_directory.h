// The run directory before training starts: its writer lock, the leftovers of dead saves,
// and what a fresh run may replace. Everything here runs under the lock (rank 0's), before
// any training state exists. Internal to trainer/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "formats/run_lock.h"
#include "formats/status.h"
#include "settings/training_args.h"

namespace lockstep {

// Takes `output_dir`'s writer lock for the whole run (Busy while another process holds it),
// before anything in it is touched. `resume` names the command in the lock.
Status LockRunDirectory(const std::string& output_dir, bool resume, std::unique_ptr<RunLock>* lock);

// Staging and deleting directories are only ever left by a save or delete that died: under
// the lock no other writer can own one, so they are removed, reported on stderr, and their
// names appended to `*removed`.
Status RemoveStagingLeftovers(const std::string& output_dir, std::vector<std::string>* removed);

// The entries of output_dir a fresh run would overwrite, or a reason to refuse. With
// overwrite_output_dir they are removed, but only when every one is Lockstep's own: HF's
// flag of the same name never deletes, so a foreign checkpoint (no Lockstep manifest), a
// foreign step log, or results without a Lockstep step log beside them make it refuse.
Status PrepareFreshRunDirectory(const TrainingArgs& args);

}  // namespace lockstep
