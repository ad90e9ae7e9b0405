// One optimizer step of the reference trainer, read top to bottom as llm.c's loop reads:
// BeginStep (the record starts with the RNG state as the step begins), NextBatches
// (dataloader_next_batch: the window's sample ids), ForwardBackward (zero_grad, forward and
// backward over the window's micro-batches), Update (all-reduce, clip, AdamW, the
// scheduler), RecordStep (the loop's state, the loss the ranks agree on, the step record).
// What watches or steers a step from outside (a replay, a module trace) is a StepObserver,
// called at the phases' boundaries (step_observer.h).
#include <torch/torch.h>

#include "formats/step_log.h"
#include "trainer/adamw.h"
#include "trainer/training_run.h"

namespace lockstep {

// One optimizer update: the accumulation window of update `update` in epoch `epoch`.
Status TrainingRun::TrainStep(int64_t epoch, int64_t update) {
  StepWork w;
  LOCKSTEP_RETURN_IF_ERROR(BeginStep(epoch, update, &w));
  NextBatches(&w);
  LOCKSTEP_RETURN_IF_ERROR(ForwardBackward(&w));
  LOCKSTEP_RETURN_IF_ERROR(Update(&w));
  return RecordStep(&w);
}

Status TrainingRun::BeginStep(int64_t epoch, int64_t update, StepWork* w) {
  w->epoch = epoch;
  w->update = update;
  w->step = state_.global_step + 1;
  w->window = plan_.WindowSize(update);
  w->first_mb = plan_.WindowStart(update);
  LOCKSTEP_RETURN_IF_ERROR(observers_.StepBegins(w));  // a replay sets the generators here
  w->record.step = w->step;
  w->record.sampler = SamplerPosition{
      epoch, w->first_mb, plan_.shard.empty() ? w->first_mb * plan_.batch_size : plan_.shard[w->first_mb][0]};
  recording_->BeginStep(observers_.ReadRecords(), w);  // the generator states as the step begins
  return Status::Ok();
}

// The window's micro-batches: what the sampler draws goes to the record; a replay trains
// on what the log says.
void TrainingRun::NextBatches(StepWork* w) {
  w->ids.resize(static_cast<size_t>(w->window));
  for (int64_t k = 0; k < w->window; ++k) {
    const int64_t mb = w->first_mb + k;
    torch::Tensor& ids = w->ids[static_cast<size_t>(k)];
    ids = plan_.shard.empty() ? sampler_->Ids(mb * plan_.batch_size, plan_.MicroBatchSize(mb))
                              : sampler_->IdsAt(plan_.shard[static_cast<size_t>(mb)]);
    w->window_items += ids.numel() * items_per_sample_;
    recording_->AddBatch(ids, w);
  }
  observers_.BatchesDrawn(w);  // a replay trains on the logged ids
}

// Each micro-batch's loss is scaled by the items of the whole window, so a short last
// window is averaged over its real size (HF's num_items_in_batch). With world_invariant the
// window is the job's, and each unit of it goes forward and backward alone (world_invariant.h).
Status TrainingRun::ForwardBackward(StepWork* w) {
  model_->train();
  optimizer_->ZeroGrad();
  const auto loss_of = [&](const torch::Tensor& ids) {
    torch::Tensor x = data_.train.inputs.index_select(0, ids).to(device_);   // [b, ...]
    torch::Tensor y = data_.train.targets.index_select(0, ids).to(device_);  // [b] or [b, T]
    return model_->Loss(x, y).loss_sum / static_cast<double>(w->window_items);
  };
  if (invariant_) {
    invariant_->BeginWindow();
    for (int64_t k = 0; k < w->window; ++k) {
      observers_.MicroBatchBegins(*w, k);
      LOCKSTEP_RETURN_IF_ERROR(
          invariant_->MicroBatch(w->step, w->first_mb + k, w->ids[static_cast<size_t>(k)], loss_of));
    }
    w->step_loss = invariant_->FinishWindow();
    return Status::Ok();
  }
  w->step_loss = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  for (int64_t k = 0; k < w->window; ++k) {
    observers_.MicroBatchBegins(*w, k);
    torch::Tensor micro_loss = loss_of(w->ids[static_cast<size_t>(k)]);
    micro_loss.backward();
    w->step_loss += micro_loss.detach();
  }
  return Status::Ok();
}

Status TrainingRun::Update(StepWork* w) {
  w->lr = scheduler_.lr();
  if (!invariant_) {  // once per window, after its last micro-batch; world_invariant's sum is whole already
    LOCKSTEP_RETURN_IF_ERROR(job_.AllReduceGradients(optimizer_->params()));
  }
  observers_.GradientsReady(*w);  // before clipping scales them
  w->grad_norm = ClipGradNorm(optimizer_->params(), args_.max_grad_norm);
  saver_.WaitForSnapshotCopy();  // an async save may still be copying the weights and moments
  optimizer_->Step(w->lr);
  scheduler_.Step();
  return Status::Ok();
}

Status TrainingRun::RecordStep(StepWork* w) {
  state_.global_step = w->step;
  state_.epoch = plan_.EpochAfterUpdate(w->epoch, w->update);
  // HF sums every rank's floating-point operations (each rank's window is the same size;
  // world_invariant's window is the job's).
  const int64_t job_items = invariant_ ? w->window_items : w->window_items * job_.world();
  state_.total_flos += 6.0 * static_cast<double>(num_parameters_) * static_cast<double>(job_items);
  float loss = w->step_loss.item<float>();
  // The mean over the ranks (world_invariant's ranks agree already: W equal floats summed in
  // double and divided by W give it back exactly), and a stop any rank got.
  LOCKSTEP_RETURN_IF_ERROR(job_.AgreeOnStep(&loss, SignalArrived()));
  last_grad_norm_ = w->grad_norm.item<float>();
  last_lr_ = w->lr;
  losses_.Add(loss);

  w->record.epoch = state_.epoch;
  w->record.loss = loss;
  w->record.lr = w->lr;
  w->record.grad_norm = last_grad_norm_;
  w->record.resume_override = resume_.override_active();
  w->record.wall_time = Now() - start_time_;
  LOCKSTEP_RETURN_IF_ERROR(LogStepRecord(w));
  Emit("step", w->step);
  progress_->Update(w->step, state_.epoch, loss, w->lr, Now() - start_time_,
                    intervals_.logging > 0 && w->step % intervals_.logging == 0);
  return Status::Ok();
}

// The step record to the log: handed over typed, and the log's encoder makes it JSON off
// the loop. A job's ranks first merge theirs into rank 0's (world_invariant's record holds the
// job's micro-batches already, and every rank's generators are rank 0's: the units draw from
// their own); the observers see it complete.
Status TrainingRun::LogStepRecord(StepWork* w) {
  if (!w->recording) return Status::Ok();
  if (!invariant_) LOCKSTEP_RETURN_IF_ERROR(recording_->GatherRanks(w));
  LOCKSTEP_RETURN_IF_ERROR(observers_.RecordReady(*w));  // a replay judges it
  return recording_->Append(w);
}

}  // namespace lockstep
