// The figures `lockstep bench` reports: ratios measured within one run (Lockstep against
// its yardstick, on the same machine, interleaved), so they mean the same on any machine,
// and the floors a CI gates them on (bench/floors.json). No LibTorch here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/gate.h"
#include "formats/status.h"

namespace lockstep {

struct RatioValue {
  std::string name;             // "save_vs_raw_write"
  std::string meaning;          // what the number says, for the report
  std::string target;           // the goal, e.g. ">= 0.8", or ""
  std::optional<double> value;  // absent when a benchmark it needs did not run (no peer)
};

// Every ratio the suites' results allow, from the medians of their repetitions.
std::vector<RatioValue> ComputeRatios(const BenchSamples& results);

struct FloorVerdict {
  std::string name;
  double value = 0;
  std::optional<double> min, max;
  bool crossed = false;
};

struct FloorReport {
  std::vector<FloorVerdict> checked;
  std::vector<std::string> missing;  // floors whose ratio was not measured (e.g. no peer)
  bool crossed() const;
};

// Reads floors ({"ratio": {"min": x} or {"max": y}, ...}; "_comment" keys are skipped) from
// `path` and checks `ratios` against them. Corruption naming the file for a malformed one,
// or for a floor naming no known ratio (a typo must not pass silently).
Status CheckFloors(const std::string& path, const std::vector<RatioValue>& ratios, FloorReport* report);

std::string RatiosText(const std::vector<RatioValue>& ratios);
std::string FloorReportText(const FloorReport& report);
nlohmann::json RatiosJson(const std::vector<RatioValue>& ratios);
nlohmann::json FloorReportJson(const FloorReport& report);

}  // namespace lockstep
