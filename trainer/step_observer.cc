#include "trainer/step_observer.h"

#include <algorithm>

namespace lockstep {

bool StepObservers::ReadRecords() const {
  return std::any_of(all_.begin(), all_.end(), [](const auto& o) { return o->ReadsRecords(); });
}

void StepObservers::RestoresState(std::vector<StateFile>* files) {
  for (const auto& o : all_) o->RestoresState(files);
}

Status StepObservers::StepBegins(StepWork* w) {
  for (const auto& o : all_) LOCKSTEP_RETURN_IF_ERROR(o->StepBegins(w));
  return Status::Ok();
}

void StepObservers::BatchesDrawn(StepWork* w) {
  for (const auto& o : all_) o->BatchesDrawn(w);
}

void StepObservers::MicroBatchBegins(const StepWork& w, int64_t k) {
  for (const auto& o : all_) o->MicroBatchBegins(w, k);
}

void StepObservers::GradientsReady(const StepWork& w) {
  for (const auto& o : all_) o->GradientsReady(w);
}

Status StepObservers::RecordReady(const StepWork& w) {
  for (const auto& o : all_) LOCKSTEP_RETURN_IF_ERROR(o->RecordReady(w));
  return Status::Ok();
}

bool StepObservers::StopAfterStep() const {
  return std::any_of(all_.begin(), all_.end(), [](const auto& o) { return o->StopAfterStep(); });
}

}  // namespace lockstep
