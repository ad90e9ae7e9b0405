#include "trainer/step_recording.h"

#include <torch/torch.h>

#include "trainer/data_parallel.h"
#include "trainer/run_generators.h"
#include "trainer/scope_seconds.h"
#include "trainer/trainer.h"

namespace lockstep {

void StepRecording::BeginStep(bool observers_read_records, StepWork* w) {
  w->recording = options_.record_steps || observers_read_records;
  if (!w->recording) return;
  ScopeSeconds cost(&seconds_);
  const bool full = options_.rng_full_state_every > 0 && (w->step - 1) % options_.rng_full_state_every == 0;
  if (job_->IsRankZero()) {
    w->record.rng = generators_->States(full);  // raw: the log's encoder hashes it
  } else if (job_->world() > 1) {
    w->other_rng_states = generators_->States(full, /*raw=*/false);  // for rank 0's record
  }
}

void StepRecording::AddBatch(const at::Tensor& ids, StepWork* w) {
  if (!w->recording) return;
  ScopeSeconds cost(&seconds_);
  w->record.batches.emplace_back(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
}

Status StepRecording::GatherRanks(StepWork* w) {
  ScopeSeconds cost(&seconds_);
  return job_->GatherRankRecords(w->other_rng_states, &w->record);
}

Status StepRecording::Append(StepWork* w) {
  if (!job_->IsRankZero()) return Status::Ok();
  ScopeSeconds cost(&seconds_);
  return (*log_)->Append(std::move(w->record));  // the record is done with here
}

}  // namespace lockstep
