// Settings that say where a run writes, not what it computes: output_dir, logging_dir,
// run_name, ... (HF's TrainingArguments and Lockstep's alike). Two runs of one script into two
// directories differ in them; that is never a difference between the runs. The list is
// python/lockstep/location_settings.json, shared with the Python package (CMake reads it).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace lockstep {

// True for one of those settings.
bool IsOutputLocationSetting(const std::string& key);

// `settings` (an object of settings) without them; anything else is returned as it is.
nlohmann::json WithoutOutputLocations(nlohmann::json settings);

}  // namespace lockstep
