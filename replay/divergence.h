// A Divergence names the first place two runs (or checkpoints) stop being bit-identical:
// the step, where it was seen, the field, and both values. No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace lockstep {

struct Divergence {
  int64_t step = 0;        // the first step whose record or state differs
  std::string where;       // "step log", "checkpoint-384/model.h5", "train_results.json", ...
  std::string field;       // "rng.cpu", "loss_bits", "fc1.weight", "log_history.loss", ...
  std::string reference;   // the reference's value, abbreviated
  std::string candidate;   // the candidate's value, abbreviated
  std::string ToString() const;  // "step 101, step log: rng.cpu (reference ..., candidate ...)"
  nlohmann::json ToJson() const;
};

// The earlier of two divergences by step; on a tie the one already held wins, so callers
// offer them in cause-before-effect order.
void KeepEarliest(const std::optional<Divergence>& d, std::optional<Divergence>* earliest);

// `value` as compact JSON, cut to `max_chars` with "..." when longer.
std::string Abbreviate(const nlohmann::json& value, size_t max_chars = 72);

// Wall-clock fields that legitimately differ between identical runs: "wall_time" and any
// key ending in "_runtime" or "_per_second".
bool IsWallClockField(const std::string& key);

// The first path at which `a` and `b` differ ("log_history[3].loss", "" for the roots), with
// wall-clock fields skipped at every depth; nullopt when they agree.
struct JsonDifference {
  std::string path;
  nlohmann::json a, b;
};
std::optional<JsonDifference> FirstJsonDifference(const nlohmann::json& a, const nlohmann::json& b,
                                                  const std::string& path = "");

}  // namespace lockstep
