// Which settings a resume may change. Changing what decides the run (model shape, batch
// size, accumulation, seeds, data, optimizer, scheduler, length) would make the resumed
// run a different run, so it is refused; logging/eval/save frequency and output options
// are safe. No LibTorch here.
#pragma once

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "trainer/training_args.h"

namespace lockstep {

// True for knobs a resume may change.
bool IsSafeToChangeOnResume(const std::string& knob);

// OK when `now` decides the same run as `saved` (a checkpoint's training_args.json from
// `origin`); otherwise InvalidArgument listing every difference, saved value and new value.
Status CheckResumeSettings(const nlohmann::json& saved, const std::string& origin, const TrainingArgs& now);

}  // namespace lockstep
