// One step record: what a step log holds for one optimizer update
// (formats/doc/step_log_format.md). Both writers of step logs fill this type (the reference
// trainer, and StepRecorder for a user's own loop), and StepRecordJson is the one place that
// names the record's fields and writes the float bits beside each float. The Python
// package's Recorder writes the same bytes (tests/steplog_compat_test.cc holds it to them).
// No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

struct StepRecord {
  int64_t step = 0;  // the optimizer update this record ends: 1, 2, ... (HF's global_step)
  // The sample ids of each micro-batch of the step (its accumulation window), in order.
  std::vector<std::vector<int64_t>> batches;
  float loss = 0;       // the step's loss, as logged
  double lr = 0;        // the learning rate the update used
  float grad_norm = 0;  // the total gradient norm before clipping
  double epoch = -1;    // the fractional epoch after the step; < 0: not recorded

  // What the writer adds, not the loop:
  nlohmann::json sampler;  // {"epoch", "micro_batch", "cursor"} as the step began; null: none
  // The generator states as the step began ({"cpu": ..., "sampler": ...}): each a digest,
  // a full state, or raw bytes the log's encoder digests (DigestRawStates); null: none.
  nlohmann::json rng;
  bool resume_override = false;     // a later step of a resume whose changed settings were overridden
  std::optional<double> wall_time;  // seconds since the run (or its resume) began
};

// A generator state as a record holds it, digested now: {"size", "xxh3_128"}, and with
// `full` (every N-th step, to restore from) also "base64", the state itself.
nlohmann::json DigestedStateJson(const std::vector<uint8_t>& state, bool full);

// The inverse of DigestedStateJson with `full`: the state's bytes, checked against the
// "size" and "xxh3_128" saved beside them. Corruption naming `where` when the base64 is
// missing or invalid or the bytes are not the state that was saved.
Status DecodeFullState(const nlohmann::json& saved, const std::string& where, std::vector<uint8_t>* state);

// The same, but a state that is not `full` stays raw bytes (json::binary) for the log's
// encoder to digest off the training loop (DigestRawStates).
nlohmann::json GeneratorStateJson(std::vector<uint8_t> state, bool full);

// The record as the log stores it: "loss_bits" and "grad_norm_bits" beside the floats;
// optional fields only when set. Moves `record`'s batches and RNG states.
nlohmann::json StepRecordJson(StepRecord&& record);

}  // namespace lockstep
