// The trainer's replay mode (TrainHooks::replay_step_begin/end): the observer that makes a
// training step the logged one and hands its recomputed record to the judge. `lockstep
// replay` drives it (replay/step_replay.h).
#include <torch/torch.h>

#include "formats/file_names.h"
#include "formats/step_log.h"
#include "trainer/data_parallel.h"
#include "trainer/step_observer.h"
#include "trainer/torch_bridge.h"
#include "trainer/trainer.h"

namespace lockstep {
namespace {

// Sets `gen` to the logged full state at `rng[name]`, when there is one.
Status RestoreLoggedGenerator(const GeneratorStates& rng, const char* name, at::Generator gen, int64_t step) {
  const auto saved = rng.find(name);
  if (saved == rng.end() || !saved->second.full()) return Status::Ok();
  std::vector<uint8_t> state;
  const std::string where = std::string(kStepLogFile) + ": step " + std::to_string(step) + ": rng." + name;
  LOCKSTEP_RETURN_IF_ERROR(DecodeFullState(saved->second, where, &state));
  if (state.size() != GeneratorStateBytes(gen).size()) {
    return Status::Corruption(where + " is not a valid generator state (" + std::to_string(state.size()) + " bytes)");
  }
  SetGeneratorStateBytes(gen, state);
  return Status::Ok();
}

// The replay's observer (step_observer.h): each step starts from its logged record, and
// rank 0 judges the job's recomputed record (it holds every rank's batches and digests).
class LoggedStepReplay : public StepObserver {
 public:
  LoggedStepReplay(const TrainHooks& hooks, DataParallelJob* job, bool cuda, int64_t train_samples)
      : begin_(hooks.replay_step_begin),
        end_(hooks.replay_step_end),
        job_(job),
        cuda_(cuda),
        train_samples_(train_samples) {}

  bool ReadsRecords() const override { return true; }

  Status StepBegins(StepWork* w) override {
    logged_ = StepRecord();
    LOCKSTEP_RETURN_IF_ERROR(begin_(w->step, &logged_));
    if (!job_->IsRankZero()) {
      // Rank r of a data-parallel replay trains on what rank r drew: the record's other ranks.
      const size_t at = static_cast<size_t>(job_->rank() - 1);
      logged_.batches =
          at < logged_.batches_other_ranks.size() ? std::move(logged_.batches_other_ranks[at]) : Batches();
      logged_.rng = at < logged_.rng_other_ranks.size() ? std::move(logged_.rng_other_ranks[at]) : GeneratorStates();
    }
    LOCKSTEP_RETURN_IF_ERROR(
        RestoreLoggedGenerator(logged_.rng, step_key::kCpu, DefaultGenerator(torch::kCPU), w->step));
    if (cuda_) {
      LOCKSTEP_RETURN_IF_ERROR(
          RestoreLoggedGenerator(logged_.rng, step_key::kCuda, DefaultGenerator(torch::kCUDA), w->step));
    }
    return Status::Ok();
  }

  // The logged sample ids replace the sampler's when they fit this step's window and the
  // data set; when they do not, the sampler's stay and the judge reports the data mismatch.
  void BatchesDrawn(StepWork* w) override {
    if (logged_.batches.size() != w->ids.size()) return;
    std::vector<torch::Tensor> ids;
    for (const auto& b : logged_.batches) {
      for (int64_t id : b) {
        if (id < 0 || id >= train_samples_) return;
      }
      ids.push_back(torch::tensor(b, torch::kInt64));
    }
    w->ids = std::move(ids);
  }

  Status RecordReady(const StepWork& w) override {
    bool stop = false;
    if (job_->IsRankZero() && end_) {
      StepRecord as_logged = w.record;  // raw RNG states become digests, as the log stores them
      DigestRawStates(&as_logged);
      LOCKSTEP_RETURN_IF_ERROR(end_(as_logged, &stop));
    }
    LOCKSTEP_RETURN_IF_ERROR(job_->AnyRankSays(&stop, "agreeing where the replay stops"));
    stop_ = stop;
    return Status::Ok();
  }

  bool StopAfterStep() const override { return stop_; }

 private:
  std::function<Status(int64_t step, StepRecord* logged)> begin_;
  std::function<Status(const StepRecord& record, bool* stop)> end_;
  DataParallelJob* job_;
  bool cuda_;
  int64_t train_samples_;
  StepRecord logged_;  // this step's, as the log holds it
  bool stop_ = false;
};

}  // namespace

std::unique_ptr<StepObserver> MakeLoggedStepReplay(const TrainHooks& hooks, DataParallelJob* job, bool cuda,
                                                   int64_t train_samples) {
  return std::make_unique<LoggedStepReplay>(hooks, job, cuda, train_samples);
}

}  // namespace lockstep
