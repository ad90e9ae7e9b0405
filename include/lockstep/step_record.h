// lockstep::StepRecord: what a step log holds for one optimizer update, as one type. A loop
// recorded with StepRecorder fills the first six fields and hands it to EndStep; ReadStepLog
// (lockstep/step_log.h) gives every record of a log back in this form, floats read from the
// bits they were stored with. The stored form: formats/doc/step_log_format.md.
//
// nlohmann::json (nlohmann_json 3.9 or later, which find_package(Lockstep) finds) is part of
// this API: a generator state's and a record's fields that no member here names are kept as
// JSON, as they were stored.
//
// Part of Lockstep's installed API (find_package(Lockstep), target Lockstep::formats).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep {

// One generator's state as a record holds it.
struct GeneratorState {
  uint64_t size = 0;
  std::string xxh3_128;  // the digest of the state's bytes
  std::string base64;    // the state itself, on the full-state steps; empty on the others
  nlohmann::json extra;  // any other field its writer adds (a CUDA state's seed and offset); null: none
  // Writer only: the state's bytes, which the log's writer digests off the training loop;
  // empty in every record read back.
  std::vector<uint8_t> raw;

  bool full() const { return !base64.empty(); }
  // The same state: its size, digest and other fields (a full state is what its digest covers).
  bool SameState(const GeneratorState& other) const;
};
// By generator: "cpu" and "cuda" (the default generators as the step began), "sampler" (the
// reference trainer's, as the epoch began), and the Python writers' "python" and "numpy".
using GeneratorStates = std::map<std::string, GeneratorState>;

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

}  // namespace lockstep
