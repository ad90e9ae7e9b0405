// `lockstep replay`'s judge: feeds a replay the records the step log holds and checks each
// recomputed record against them, field by field, cause before effect. The re-execution
// itself is lockstep_step_replay's (replay/step_replay.h); this part needs no LibTorch.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "diff/divergence.h"
#include "diff/tensor_compare.h"
#include "formats/status.h"
#include "formats/step_record.h"

namespace lockstep {

struct ReplayMismatch {
  int64_t step = 0;
  std::string cause;        // divergence vocabulary: data, rng, lr, numerics, ...
  std::string field;        // "loss_bits", "rng.cpu.xxh3_128", "batches[0][3]"
  std::string reference;    // the logged value
  std::string candidate;    // the recomputed value
  nlohmann::json numerics;  // for loss/grad-norm bits: ulp_float32 and relative distance
};

struct ReplayReport {
  int64_t from_step = 0;
  int64_t steps_requested = 0;
  int64_t steps_replayed = 0;          // records recomputed and checked
  int64_t steps_within_tolerance = 0;  // of those, differing in bits but accepted
  int64_t full_rng_restores = 0;       // steps that began from a logged full generator state
  int64_t digest_checks = 0;           // steps whose generator state was checked by digest only
  std::optional<ReplayMismatch> first_mismatch;
  Tolerance tolerance;
  double replay_seconds = 0;  // first step begun to last step checked
  bool passed() const { return !first_mismatch && steps_replayed == steps_requested; }
};

class ReplayJudge {
 public:
  // Reads the step log of `run_dir` and judges the `steps` steps after from_step; `steps` <= 0:
  // every logged step after it (report().steps_requested says how many). InvalidArgument
  // when the log lacks one of them or holds none after from_step; Corruption (from the
  // reader) for a damaged log.
  static Status Open(const std::string& run_dir, int64_t from_step, int64_t steps, const Tolerance& tolerance,
                     std::unique_ptr<ReplayJudge>* out);

  // The logged record of `step`, for the replay to restore from (TrainHooks::replay_step_begin).
  Status Begin(int64_t step, StepRecord* logged);
  // Checks a recomputed record (its generator states digested); `*stop` at the first
  // mismatch or after the last step.
  Status End(const StepRecord& recomputed, bool* stop);

  const ReplayReport& report() const { return report_; }

 private:
  ReplayJudge() = default;
  std::map<int64_t, StepRecord> logged_;  // step -> record, for the replayed range
  ReplayReport report_;
  std::chrono::steady_clock::time_point started_;
};

// The JSON contract: steps_replayed, first_mismatch (null or {step, field, reference,
// candidate, cause, numerics}), passed, and the rest of the report.
nlohmann::json ReplayReportJson(const ReplayReport& r);
std::string ReplayReportText(const ReplayReport& r);

}  // namespace lockstep
