// One step record: what a step log holds for one optimizer update
// (formats/doc/step_log_format.md), written and read as one type. Both writers of step logs
// fill it (the reference trainer, and StepRecorder for a user's own loop), every reader gets
// it from ParseStepRecord (through ReadStepLog), and this file is the one place that names
// the record's fields (step_key) and turns them into JSON and back. The Python package's
// Recorder writes the same bytes (tests/steplog_compat_test.cc holds it to them).
// No LibTorch here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"

namespace lockstep {

// The record's field names, as the log stores them.
namespace step_key {
inline constexpr char kKind[] = "kind";  // "step" for a step record; events name their own kind
inline constexpr char kStep[] = "step", kBatches[] = "batches", kLoss[] = "loss", kLossBits[] = "loss_bits",
                      kLr[] = "lr", kGradNorm[] = "grad_norm", kGradNormBits[] = "grad_norm_bits", kEpoch[] = "epoch",
                      kSampler[] = "sampler", kRng[] = "rng", kResumeOverride[] = "resume_override",
                      kWallTime[] = "wall_time", kBatchesOtherRanks[] = "batches_other_ranks",
                      kRngOtherRanks[] = "rng_other_ranks";
// A generator state's fields, in a record and in the checkpoint files that hold states.
inline constexpr char kStateSize[] = "size", kStateDigest[] = "xxh3_128", kStateBase64[] = "base64";
// The generators a record names: the CPU's, the sampler's (its state as the epoch began),
// CUDA's, and the Python writers' Python `random` and NumPy.
inline constexpr char kCpu[] = "cpu", kSamplerGenerator[] = "sampler", kCuda[] = "cuda";
}  // namespace step_key

// One generator's state as a record holds it.
struct GeneratorState {
  uint64_t size = 0;
  std::string xxh3_128;  // the digest of the state's bytes
  std::string base64;    // the state itself, on the full-state steps; empty on the others
  nlohmann::json extra;  // any other field its writer adds (a CUDA state's seed and offset); null: none
  // Writer only: a state the log's encoder digests off the training loop (DigestRawStates);
  // empty in every record read back.
  std::vector<uint8_t> raw;

  bool full() const { return !base64.empty(); }
  // The same state: its size, digest and other fields (a full state is what its digest covers).
  bool SameState(const GeneratorState& other) const;
};
using GeneratorStates = std::map<std::string, GeneratorState>;  // by name (step_key::kCpu, ...)

// Where the reference trainer's sampler stood as the step began.
struct SamplerPosition {
  int64_t epoch = 0;        // the epoch's index
  int64_t micro_batch = 0;  // the step's first micro-batch within the epoch (rank 0's, in a job)
  int64_t cursor = 0;       // that micro-batch's first position in the epoch's permutation
  bool operator==(const SamplerPosition& o) const {
    return epoch == o.epoch && micro_batch == o.micro_batch && cursor == o.cursor;
  }
};

using Batches = std::vector<std::vector<int64_t>>;  // the sample ids of each micro-batch, in order

struct StepRecord {
  int64_t step = 0;     // the optimizer update this record ends: 1, 2, ... (HF's global_step)
  Batches batches;      // the step's micro-batches (its accumulation window)
  float loss = 0;       // the step's loss, as logged (stored beside its bits)
  double lr = 0;        // the learning rate the update used; NaN: not known (stored as null)
  float grad_norm = 0;  // the total gradient norm before clipping (stored beside its bits)
  double epoch = -1;    // the fractional epoch after the step; < 0: not recorded

  // What the writer adds, not the loop:
  std::optional<SamplerPosition> sampler;  // the reference trainer's; none from other writers
  GeneratorStates rng;                     // the generator states as the step began; empty: none
  // A data-parallel job's other ranks: [r - 1] is rank r's; empty for one process.
  std::vector<Batches> batches_other_ranks;
  std::vector<GeneratorStates> rng_other_ranks;
  bool resume_override = false;     // a later step of a resume whose changed settings were overridden
  std::optional<double> wall_time;  // seconds since the run (or its resume) began
  // Read only: the fields this build does not know (a newer writer's), as stored; null: none.
  nlohmann::json other;
};

// Parses one stored step record. Every field of the wrong type, a float's bits that are not
// "0x" and 8 hex digits, and a missing integer "step" are Corruption naming `where` and the
// field: the one place a reader meets the record's JSON. A float stored with its bits is read
// from the bits (the decimal beside them is for people).
Status ParseStepRecord(const nlohmann::json& stored, const std::string& where, StepRecord* out);

// The record as the log stores it: "loss_bits" and "grad_norm_bits" beside the floats;
// optional fields only when set; "kind" is the log writer's to add. A generator state with
// `raw` bytes becomes json::binary, for the log's encoder to digest. The first form moves
// `record`'s batches and RNG states.
nlohmann::json StepRecordJson(StepRecord&& record);
nlohmann::json StepRecordJson(const StepRecord& record);

// One field of `record` by its stored name (step_key), as StepRecordJson writes it; null
// when the record does not hold it.
nlohmann::json StepFieldJson(const StepRecord& record, const std::string& key);

// The names of the fields `record` holds, as StepRecordJson would store them.
std::vector<std::string> StepFieldNames(const StepRecord& record);

// Digests every state with `raw` bytes now (what the log's encoder does off the loop).
void DigestRawStates(StepRecord* record);

// A state digested now, with its bytes as base64 too when `full` (every N-th step: a state
// to restore from).
GeneratorState DigestedState(const std::vector<uint8_t>& state, bool full);
// The same as JSON: {"size", "xxh3_128"}, and "base64" when `full` (the checkpoint files'
// form of a state).
nlohmann::json DigestedStateJson(const std::vector<uint8_t>& state, bool full);

// A state for a step record: digested now when `full`, else kept raw for the log's encoder.
GeneratorState GeneratorStateOf(std::vector<uint8_t> state, bool full);

// Generator states as a record stores them, and back (Corruption naming `where`).
nlohmann::json GeneratorStatesJson(const GeneratorStates& states);
Status ParseGeneratorStates(const nlohmann::json& stored, const std::string& where, GeneratorStates* out);

// A full state's bytes, checked against the size and XXH3-128 saved beside them. Corruption
// naming `where` when the state is not full, its base64 is invalid or the bytes are not the
// state that was saved. The JSON form reads a checkpoint file's {"size", "xxh3_128", "base64"}.
Status DecodeFullState(const GeneratorState& saved, const std::string& where, std::vector<uint8_t>* state);
Status DecodeFullState(const nlohmann::json& saved, const std::string& where, std::vector<uint8_t>* state);

// "0x40117f02": a float's bits, as step records (loss_bits, grad_norm_bits) hold them, and back.
std::string FloatBits(float f);
bool ParseFloatBits(const std::string& text, float* out);

}  // namespace lockstep
