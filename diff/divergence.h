// A Divergence names the first place two runs (or checkpoints) stop being bit-identical:
// the step, where it was seen, the field, and both values. No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep {

// Why two runs part, cause before effect. A fixed vocabulary scripts can rely on:
//   data      the sampler position or the sample ids differ
//   rng       same data, but the RNG state at the step's start differs
//   lr        same data and RNG, but the learning rate differs
//   numerics  same data, RNG and lr, but the loss or grad-norm bits differ
//   unknown   a logged outcome (loss, grad norm, an eval metric) differs, but no step log
//             records what came before it: data, RNG and lr were not compared (HF's
//             log_history), so no cause is claimed
//   length    one run has a step (or log entry) the other lacks
//   missing   a file one run's checkpoint holds, the other's lacks (a deleted
//             rng_state.pth): its absence is the difference, not what it held
//   weights   the step logs agree, but a checkpoint's tensors do not
//   state     the step logs agree, but other saved state or a results file does not
//   damaged   a checkpoint's file fails the checksum its format or manifest carries: its
//             bytes changed after the save, which no training explains
//   settings  the runs cannot be compared step by step (model, data set or plan differ),
//             or a record differs only in how it was run (resume_override, epoch)
namespace cause {
inline constexpr char kData[] = "data", kRng[] = "rng", kLr[] = "lr", kNumerics[] = "numerics", kLength[] = "length",
                      kWeights[] = "weights", kState[] = "state", kSettings[] = "settings", kUnknown[] = "unknown",
                      kMissing[] = "missing", kDamaged[] = "damaged";
}  // namespace cause

// True for the causes that are a computed number differing (numerics, unknown): those a
// tolerance may accept and whose float distance is reported.
bool IsNumericOutcome(const std::string& cause);

// The cause a differing step-record field points at ("sampler.cursor" -> data, "rng.cpu.xxh3_128" -> rng).
std::string CauseOfStepField(const std::string& field);
// The same for a Hugging Face log_history key ("learning_rate" -> lr, "loss" -> unknown).
std::string CauseOfLogKey(const std::string& key);

struct Divergence {
  int64_t step = 0;       // the first step whose record or state differs
  std::string cause;      // one of the cause:: names
  std::string where;      // "step log", "checkpoint-384/model.h5", "train_results.json", ...
  std::string field;      // "rng.cpu", "loss_bits", "fc1.weight", "log_history.loss", ...
  std::string reference;  // the reference's value, abbreviated
  std::string candidate;  // the candidate's value, abbreviated
  // Other causes whose fields differ at the same step too, cause before effect (data, rng,
  // lr only: an outcome that differs after them is their effect). A resume that neither
  // skips its data nor restores its generators parts in both at once: both are named.
  std::vector<std::string> also;
  std::string ToString() const;  // "step 101, step log: rng.cpu [rng] (reference ..., candidate ...)"
  nlohmann::json ToJson() const;
};

// A divergence naming one cause (`also` empty).
Divergence MakeDivergence(int64_t step, std::string cause, std::string where, std::string field, std::string reference,
                          std::string candidate);

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
// Every such path, in the same order, at most `limit` of them.
std::vector<JsonDifference> JsonDifferences(const nlohmann::json& a, const nlohmann::json& b, size_t limit);

}  // namespace lockstep
