// Helpers for tests that train: tiny settings, a quiet deterministic clock, and readers
// that fail the test on error.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/step_log.h"
#include "trainer/trainer.h"

namespace lockstep {
namespace test {

// A run of a few steps: 37 samples, batch 5 (8 micro-batches per epoch), 2 epochs.
TrainingArgs Tiny(const std::string& model, const std::string& out);

// No progress display, and a fake clock so identical runs write identical wall_time.
TrainOptions Quiet();

// Trains and expects success.
TrainResult Train(const TrainingArgs& a, TrainOptions o = Quiet());

StepLogContents Log(const std::string& run_dir);

// Step records without the wall clock: what must match between two runs.
std::vector<nlohmann::json> Comparable(const StepLogContents& log);

// Tensor name -> bytes of a tensor file.
std::map<std::string, std::vector<uint8_t>> Tensors(const std::string& file);

}  // namespace test
}  // namespace lockstep
