// Comparing one step record with another (the log's with a replay's, or two runs'): the
// first field that differs, named with its cause, and beyond bit equality float32 loss and
// grad-norm bits within a tolerance, with their ULP and relative distance. Shared by
// `lockstep diff`, verify-resume and `lockstep replay`. No LibTorch here.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "diff/divergence.h"
#include "diff/tensor_compare.h"
#include "formats/step_log.h"
#include "formats/step_record.h"

namespace lockstep {

// The first field in which two step records differ, checked cause before effect: sampler
// position, RNG states as the step began (a loop may draw its batch from them), batch
// sample ids, lr, loss bits, grad-norm bits, epoch, then any other field. wall_time is ignored; float fields are
// compared through their exact bits. Data, RNG and lr differences found after the first are listed in its `also`.
std::optional<Divergence> CompareStepRecords(const StepRecord& reference, const StepRecord& candidate);

// "0x40117f02" -> the float with those bits; NaN for anything that is not such a string
// (a module trace's bits: formats/module_trace.h).
float BitsToFloat(const nlohmann::json& bits);
uint32_t FloatToBits(float f);

// Whether `tol` accepts float32 values a (reference) and b (candidate): equal bits, both
// NaN, or the rule of diff/tensor_compare.h.
bool FloatClose(float a, float b, const Tolerance& tol);

// Keeps only the generators both records hold (a CUDA run logs "cuda" beside "cpu").
void AlignGenerators(StepRecord* a, StepRecord* b);

// The generators of `log` that were never drawn from: each process's records (the log
// split at its resume events) hold at least two steps, and the generator's state is the same
// in all of them. Such a generator's state differing between two runs changes nothing they
// computed (a NumPy imported but never used, seeded from the OS). "sampler" is never idle:
// it is recorded once per epoch, as the epoch began. `rank` > 0: that rank's generators in a
// data-parallel log (rng_other_ranks), each rank's process as unseeded as rank 0's may be.
std::set<std::string> IdleGenerators(const StepLogContents& log, size_t rank = 0);

// Moves the generators named in `names` out of record->rng into the returned states.
GeneratorStates TakeGenerators(const std::set<std::string>& names, GeneratorStates* states);

// True when two records differ only in loss and grad-norm bits that `tol` accepts.
bool StepWithinTolerance(StepRecord a, StepRecord b, const Tolerance& tol);

// Two float32 values' distance: {reference, candidate, ulp_float32, relative}.
nlohmann::json FloatDistance(float reference, float candidate);

// For each of loss and grad_norm whose bits differ: its FloatDistance.
nlohmann::json NumericsDetail(const StepRecord& a, const StepRecord& b);

}  // namespace lockstep
