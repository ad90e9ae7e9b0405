// One step record: what a step log holds for one optimizer update
// (formats/doc/step_log_format.md), written and read as one type. Both writers of step logs
// fill it (the reference trainer, and StepRecorder for a user's own loop), every reader gets
// it from ParseStepRecord (through ReadStepLog), and this file is the one place that names
// the record's fields (step_key) and turns them into JSON and back. The Python package's
// Recorder writes the same bytes (tests/python/steplog_compat_test.cc holds it to them).
// No LibTorch here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/status.h"
#include "lockstep/step_record.h"  // the record's types: GeneratorState, Batches, StepRecord

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

// The resume event: the record a resume appends between the steps it follows and the
// ones it adds (StepLogWriter::AppendEvent), its kind and its fields. Its "resume_override"
// is step_key::kResumeOverride, the name every later step record carries too.
namespace event_key {
inline constexpr char kResume[] = "resume";
inline constexpr char kAfterStep[] = "after_step", kCheckpoint[] = "checkpoint",
                      kChangedSettings[] = "changed_settings", kSkippedCheckpoints[] = "skipped_checkpoints",
                      kRemovedLeftovers[] = "removed_leftovers", kStepLogDamage[] = "step_log_damage",
                      kFaultInjected[] = "fault_injected", kWorldSize[] = "world_size", kWorldSizeFrom[] = "from",
                      kWorldSizeTo[] = "to", kUnreadFiles[] = "unread_files";
}  // namespace event_key

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
// Micro-batches of sample ids as a record stores them ("batches"), and Corruption naming
// `where` when they are not lists of lists of integers.
Status ParseBatches(const nlohmann::json& stored, const std::string& where, Batches* out);

// A full state's bytes, checked against the size and XXH3-128 saved beside them. Corruption
// naming `where` when the state is not full, its base64 is invalid or the bytes are not the
// state that was saved. The JSON form reads a checkpoint file's {"size", "xxh3_128", "base64"}.
Status DecodeFullState(const GeneratorState& saved, const std::string& where, std::vector<uint8_t>* state);
Status DecodeFullState(const nlohmann::json& saved, const std::string& where, std::vector<uint8_t>* state);

// "0x40117f02": a float's bits, as step records (loss_bits, grad_norm_bits) hold them, and back.
std::string FloatBits(float f);
bool ParseFloatBits(const std::string& text, float* out);

}  // namespace lockstep
