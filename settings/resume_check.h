// Which settings a resume may change. Changing what decides the run (model shape, batch
// size, accumulation, seeds, data, optimizer, scheduler, length) would make the resumed
// run a different run, so it is refused; logging/eval/save frequency and output options
// are safe. No LibTorch here.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "settings/training_args.h"

namespace lockstep {

// True for knobs a resume may change.
bool IsSafeToChangeOnResume(const std::string& knob);

struct SettingChange {
  std::string knob;
  nlohmann::json checkpoint;  // the value saved in the checkpoint ("(absent)" if none)
  nlohmann::json now;
  bool safe = false;  // IsSafeToChangeOnResume(knob), or a world_invariant run's change of world size
  std::string why;    // world_size: why the run cannot resume at another size ("" when it can)
};

// Every knob whose value in `now` differs from `saved` (a checkpoint's training_args.json).
// A knob `saved` lacks (a checkpoint older than the knob) is unchanged when `now` holds its
// default. A world_invariant run resumed at another world size that keeps the global
// micro-batch (per_device_train_batch_size x world_size) changes world_size and
// per_device_train_batch_size safely. Corruption (naming `origin`) when `saved` is not a
// JSON object.
Status DiffResumeSettings(const nlohmann::json& saved, const std::string& origin, const TrainingArgs& now,
                          std::vector<SettingChange>* changes);

// OK when no change in `changes` is unsafe, or when `override_unsafe` is set. Otherwise
// InvalidArgument listing every unsafe difference as "knob: checkpoint X, now Y", and for a
// change of world_size why the run cannot resume at another size.
Status CheckResumeSettings(const std::vector<SettingChange>& changes, const std::string& origin, bool override_unsafe);

}  // namespace lockstep
