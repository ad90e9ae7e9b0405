// The training loop. Read RunTraining, then TrainingRun::Train top to bottom: one epoch
// draws one permutation; one step (train_step.cc) runs its accumulation window of
// micro-batches, clips, steps AdamW and appends a step record; then the loop logs /
// evaluates / saves as HF would, and stops early if a preemption asks it to.
#include "trainer/trainer.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "formats/checkpoint.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/rotation.h"
#include "settings/location_settings.h"
#include "settings/lr_lambda.h"
#include "settings/memory_estimate.h"
#include "settings/step_plan.h"
#include "settings/trainer_state.h"
#include "trainer/adamw.h"
#include "trainer/blas_info.h"
#include "trainer/checkpoint_io.h"
#include "trainer/datasets.h"
#include "trainer/models.h"
#include "trainer/progress.h"
#include "trainer/sampler.h"
#include "trainer/torch_bridge.h"
#include "trainer/training_run.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

constexpr char kLockstepVersion[] = LOCKSTEP_VERSION;  // python/lockstep/VERSION, via CMake

// "eval @ step 100: eval_loss 0.3172, eval_accuracy 0.9023 (best eval_accuracy so far)".
std::string EvalNote(int64_t step, const json& metrics, const std::string& best_key, bool new_best) {
  std::string note = "eval @ step " + std::to_string(step) + ":";
  for (const char* key : {"eval_loss", "eval_accuracy"}) {
    if (!metrics.contains(key)) continue;
    char value[32];
    std::snprintf(value, sizeof(value), " %s %.4f,", key, metrics[key].get<double>());
    note += value;
  }
  note.pop_back();
  if (new_best) note += " (best " + best_key + " so far)";
  return note;
}

// The thread count decides the run's bits. A resume takes the checkpoint's unless one is
// given (a different one is then refused by the settings check, unless overridden); a
// fresh run takes DefaultNumThreads(). Either way the value is recorded resolved, and the
// BLAS library gets the same count, whatever OMP_NUM_THREADS said when it loaded.
Status ResolveThreads(const std::string& checkpoint, TrainingArgs* args) {
  if (!args->num_threads && !checkpoint.empty()) {
    json saved;
    LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile((fs::path(checkpoint) / kTrainingArgsJsonFile).string(), &saved));
    const auto it = saved.is_object() ? saved.find("num_threads") : saved.end();
    if (it != saved.end() && it->is_number_integer() && it->get<int64_t>() >= 1) args->num_threads = it->get<int64_t>();
  }
  if (!args->num_threads) args->num_threads = DefaultNumThreads();
  at::set_num_threads(static_cast<int>(*args->num_threads));
  SetBlasThreads(static_cast<int>(*args->num_threads));
  return Status::Ok();
}

}  // namespace

// The physical cores this process may run on (its affinity mask; a core's hyperthreads
// count once), read from sysfs; 1 when it cannot be read.
static int64_t AvailablePhysicalCores() {
  cpu_set_t allowed;
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return 1;
  std::set<std::pair<std::string, std::string>> cores;  // (package, core)
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(topology + "physical_package_id"), core(topology + "core_id");
    std::string p, c;
    if (!(package >> p) || !(core >> c)) p = "cpu", c = std::to_string(cpu);
    cores.insert({p, c});
  }
  return std::max<int64_t>(1, static_cast<int64_t>(cores.size()));
}

// PyTorch's own default, one thread per physical core, unless OMP_NUM_THREADS says otherwise
// (LibTorch then takes it): Debian's LibTorch 1.13 reports 1 on a 2-core machine, where a
// plain PyTorch loop's BLAS runs on both cores.
int64_t DefaultNumThreads() {
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (omp != nullptr && *omp != '\0') return at::get_num_threads();
  return std::max<int64_t>(at::get_num_threads(), AvailablePhysicalCores());
}

bool CudaIsAvailable() { return torch::cuda::is_available(); }

Status TrainingRun::Setup() {
  PinBlasBranch();                                        // before any computation: MKL reads its branch once
  LOCKSTEP_RETURN_IF_ERROR(job_.Join(&args_, &device_));  // also resolves the device: a rank's GPU is its LOCAL_RANK's
  EnableDeterminism(device_);
  std::string checkpoint;
  LOCKSTEP_RETURN_IF_ERROR(PrepareRunDirectory(&checkpoint));
  LOCKSTEP_RETURN_IF_ERROR(ResolveThreads(checkpoint, &args_));

  // Seed first: model initialisation and dropout draw from the global generators.
  torch::manual_seed(static_cast<uint64_t>(args_.seed));
  data_ = MakeDatasets(args_);
  items_per_sample_ = data_.train.targets.numel() / std::max<int64_t>(1, data_.train.size());
  model_ = MakeModel(args_);
  model_->to(device_);
  LOCKSTEP_RETURN_IF_ERROR(job_.BroadcastParameters(model_->parameters()));
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (const auto& p : model_->named_parameters()) {
    params.emplace_back(p.key(), p.value());
    num_parameters_ += p.value().numel();
  }
  optimizer_ =
      std::make_unique<AdamW>(params, model_->NoDecayParameterNames(),
                              AdamWOptions{args_.adam_beta1, args_.adam_beta2, args_.adam_epsilon, args_.weight_decay});

  LOCKSTEP_RETURN_IF_ERROR(ComputeStepPlan(args_, data_.train.size(), &plan_, job_.rank()));
  LrLambdaSpec spec{args_.lr_scheduler_type, args_.lr_scheduler_kwargs, args_.learning_rate,
                    ResolveWarmupSteps(args_.warmup_steps, plan_.max_steps), plan_.max_steps};
  LrLambda schedule;
  LOCKSTEP_RETURN_IF_ERROR(LrLambda::Create(spec, &schedule));
  scheduler_ = LrScheduler(std::move(schedule));
  sampler_ = std::make_unique<EpochSampler>(data_.train.size(), args_.data_seed.value_or(args_.seed));
  generators_ = std::make_unique<RunGenerators>(sampler_.get(), device_.is_cuda());
  if (plan_.world_invariant) {
    invariant_ = std::make_unique<WorldInvariantStep>(plan_, &job_, &optimizer_->params(), args_.seed, device_);
  }
  recording_ = std::make_unique<StepRecording>(options_, &job_, generators_.get(), &step_log_);
  // What the caller's hooks and faults ask to watch or steer, outside the loop.
  const TrainHooks& hooks = options_.hooks;
  if (hooks.replay_step_begin)
    observers_.Add(MakeLoggedStepReplay(hooks, &job_, device_.is_cuda(), data_.train.size()));
  if (hooks.trace_step > 0 && hooks.on_trace)
    observers_.Add(MakeModuleTracer(model_, hooks.trace_step, hooks.on_trace, options_.faults.numerics_module));
  if (options_.faults.resume != ResumeFault::kNone) {
    observers_.Add(MakeResumeFault(options_.faults.resume, {job_.RngFileName(), [this] { scheduler_.Restart(); },
                                                            [this] { losses_.Restart(state_.global_step); }}));
  }

  state_.max_steps = plan_.max_steps;
  state_.num_train_epochs = plan_.num_epochs;
  state_.train_batch_size = args_.per_device_train_batch_size;
  intervals_ = ResolveIntervals(args_, plan_.max_steps);
  RecordIntervals(args_, plan_.max_steps, &state_);

  if (!checkpoint.empty()) {
    LOCKSTEP_RETURN_IF_ERROR(Resume(checkpoint));
  } else if (IsRankZero()) {  // rank 0 writes the job's one step log
    const std::string log_path = (fs::path(args_.output_dir) / kStepLogFile).string();
    LOCKSTEP_RETURN_IF_ERROR(StepLogWriter::Create(log_path, StepLogHeader(), options_.step_log, &step_log_));
  }
  progress_ = std::make_unique<ProgressDisplay>(options_.show_progress && IsRankZero(), options_.interactive_progress,
                                                plan_.max_steps);
  return Status::Ok();
}

// Everything that identifies the run, and nothing that varies between identical runs
// (no timestamps, no output_dir), so the same run writes the same bytes.
json TrainingRun::StepLogHeader() const {
  const json args = WithoutOutputLocations(TrainingArgsToJson(args_));
  return {{"lockstep_version", kLockstepVersion},
          {"torch_version", TORCH_VERSION},
          {"device", device_.str()},
          {"num_threads", at::get_num_threads()},
          {"blas", BlasInfo()},
          {"training_args", args},
          {"dataset",
           {{"name", data_.name},
            {"train_samples", data_.train.size()},
            {"eval_samples", data_.eval.size()},
            {"xxh3_128", data_.digest}}},
          {"model", {{"name", args_.model}, {"num_parameters", num_parameters_}}},
          {"plan",
           {{"micro_batches_per_epoch", plan_.micro_batches_per_epoch},
            {"updates_per_epoch", plan_.updates_per_epoch},
            {"max_steps", plan_.max_steps},
            {"num_epochs", plan_.num_epochs}}},
          {"rng_full_state_every", options_.rng_full_state_every},
          {"distributed", {{"world_size", job_.world()}, {"backend", job_.backend()}}}};
}

Status TrainingRun::Train() {
  start_time_ = Now();
  first_step_ = state_.global_step;
  if (args_.eval_on_start) {  // HF's _evaluate(skip_scheduler=True): logged, no best, no plateau step
    bool new_best = false;
    LOCKSTEP_RETURN_IF_ERROR(EvaluateAndLog(/*in_loop=*/false, &new_best));
  }
  for (int64_t epoch = resume_at_.epoch; epoch < plan_.num_epochs && state_.global_step < plan_.max_steps; ++epoch) {
    const bool resuming_here = epoch == resume_at_.epoch;
    if (!(resuming_here && resume_at_.restored)) sampler_->BeginEpoch(epoch);
    for (int64_t u = resuming_here ? resume_at_.update : 0;
         u < plan_.updates_per_epoch && state_.global_step < plan_.max_steps; ++u) {
      LOCKSTEP_RETURN_IF_ERROR(TrainStep(epoch, u));  // train_step.cc
      // HF's two rounds: after the step, then after the epoch it ends (the last step ends
      // the epoch it is in).
      const StepMoment moment{state_.global_step, plan_.max_steps,
                              u + 1 == plan_.updates_per_epoch || state_.global_step == plan_.max_steps, state_.epoch};
      LOCKSTEP_RETURN_IF_ERROR(LogEvaluateSave(ControlAfterStep(args_, intervals_, moment)));
      LOCKSTEP_RETURN_IF_ERROR(LogEvaluateSave(ControlAfterEpoch(args_, moment)));
      LOCKSTEP_RETURN_IF_ERROR(saver_.Collect(/*wait=*/false));  // a --save_async save that ended
      bool stopped = false;
      LOCKSTEP_RETURN_IF_ERROR(StopIfAsked(&stopped));
      if (stopped) break;
    }
    if (stopped_early_) break;
  }
  progress_->Finish();
  return Status::Ok();
}

// A preemption (a stop signal, or --stop-after-step) that leaves something to resume from:
// the last step is checkpointed and the run ends early.
Status TrainingRun::StopIfAsked(bool* stopped) {
  *stopped = false;
  const bool asked =
      (options_.stop_after_step && state_.global_step == *options_.stop_after_step) || observers_.StopAfterStep();
  if (!(asked || StopRequested()) || state_.global_step >= plan_.max_steps) return Status::Ok();
  if (saver_.last_saved_step() != state_.global_step && options_.hooks.write_checkpoints) {
    LOCKSTEP_RETURN_IF_ERROR(SaveCheckpointNow());
  }
  stopped_early_ = *stopped = true;
  // A rank the signal has not reached yet stops with its peers, as if sent SIGTERM.
  if (!asked) stopped_by_signal_ = SignalArrived() ? static_cast<int>(*options_.stop_signal) : SIGTERM;
  progress_->Note("stopped after step " + std::to_string(state_.global_step) +
                  (asked ? " (--stop-after-step)" : " (signal " + std::to_string(stopped_by_signal_) + ")"));
  return Status::Ok();
}

// HF's _maybe_log_save_evaluate: log (past the last logged step), then evaluate (updating
// the best), then save.
Status TrainingRun::LogEvaluateSave(const StepControl& control) {
  const int64_t step = state_.global_step;
  if (control.log && step > losses_.last_logged_step()) {
    state_.log_history.push_back({{"epoch", state_.epoch},
                                  {"grad_norm", last_grad_norm_},
                                  {"learning_rate", last_lr_},
                                  {"loss", losses_.TakeLogged(step)},
                                  {"step", step}});
  }
  bool save = control.save;
  if (control.evaluate) {
    bool new_best = false;
    LOCKSTEP_RETURN_IF_ERROR(EvaluateAndLog(/*in_loop=*/true, &new_best));
    if (args_.save_strategy == "best") save = new_best;
  }
  if (save && options_.hooks.write_checkpoints) LOCKSTEP_RETURN_IF_ERROR(SaveCheckpointNow());
  return Status::Ok();
}

// HF's _evaluate: the metrics logged; in the loop, reduce_lr_on_plateau steps on the best
// model's metric and the best is updated.
Status TrainingRun::EvaluateAndLog(bool in_loop, bool* new_best) {
  json metrics;
  LOCKSTEP_RETURN_IF_ERROR(EvaluateModel(
      model_.get(), data_.eval, args_, device_, &job_, [this] { return Now(); }, &metrics));
  const std::string key = BestMetricKey(args_);
  if (in_loop && scheduler_.follows_metric() && metrics.contains(key)) scheduler_.StepOnMetric(metrics[key]);
  *new_best = in_loop && UpdateBestMetric(args_, metrics, &state_);
  metrics["epoch"] = state_.epoch;
  metrics["step"] = state_.global_step;
  state_.log_history.push_back(metrics);
  progress_->Note(EvalNote(state_.global_step, metrics, key, *new_best));
  return Status::Ok();
}

// Whether a finished run's results files are all there and whole: trainer_state.json is
// written last, so it must parse and name this step (a save killed half-way is redone).
bool TrainingRun::ResultsWritten() const {
  const fs::path out(args_.output_dir);
  json state, other;
  if (!ReadJsonFile((out / kTrainerStateFile).string(), &state).ok() || !state.is_object() ||
      state.value("global_step", json()) != json(state_.global_step)) {
    return false;
  }
  for (const char* name : {kTrainResultsFile, kAllResultsFile}) {
    if (!ReadJsonFile((out / name).string(), &other).ok()) return false;
  }
  return data_.eval.size() == 0 || ReadJsonFile((out / kEvalResultsFile).string(), &other).ok();
}

Status TrainingRun::Finish(TrainResult* result) {
  {
    ScopeSeconds wait(&final_save_wait_s_);
    LOCKSTEP_RETURN_IF_ERROR(saver_.Collect(/*wait=*/true));  // the run ends when its last save is committed
  }
  const double runtime = Now() - start_time_;
  result->output_dir = args_.output_dir;
  result->device = device_.str();
  result->global_step = state_.global_step;
  result->trained_steps = state_.global_step - first_step_;
  result->epoch = state_.epoch;
  result->runtime_s = runtime;
  result->recording_s = recording_->seconds();
  result->save_stall_s = saver_.stall_seconds();
  result->final_save_wait_s = final_save_wait_s_;
  result->world_size = job_.world();
  result->allreduce_s = job_.allreduce_seconds();
  result->resumed_from = resume_.checkpoint();
  result->skipped_checkpoints = resume_.skipped_checkpoints();
  result->saved_steps = saver_.saved_steps();
  result->stopped_early = stopped_early_;
  result->stopped_by_signal = stopped_by_signal_;
  result->num_threads = args_.num_threads.value_or(0);
  result->removed_leftovers = removed_leftovers_;
  std::vector<CheckpointDir> dirs;
  LOCKSTEP_RETURN_IF_ERROR(ListCheckpointDirs(args_.output_dir, &dirs));
  for (const auto& d : dirs) result->checkpoints.push_back(d.path);
  if (stopped_early_) return step_log_ ? step_log_->Close() : Status::Ok();  // as a preempted run: no results files

  // A resume of a finished run trains nothing: the results it wrote stand, never replaced by
  // a runtime of 0 and speeds of millions of samples per second.
  const bool trained_here = state_.global_step > first_step_;
  const fs::path out(args_.output_dir);
  if (!trained_here && !resume_.checkpoint().empty() && ResultsWritten()) {
    progress_->Note("the run had finished at step " + std::to_string(state_.global_step) +
                    ": nothing to train; its results files are left as they were");
    return step_log_ ? step_log_->Close() : Status::Ok();
  }
  const double train_loss = losses_.TrainLoss(state_.global_step);
  if (args_.load_best_model_at_end && state_.best_model_checkpoint) {
    LOCKSTEP_RETURN_IF_ERROR(
        LoadModelWeights((fs::path(*state_.best_model_checkpoint) / kModelFile).string(), model_.get()));
    progress_->Note("loaded best model from " + *state_.best_model_checkpoint);
  }
  LOCKSTEP_RETURN_IF_ERROR(IsRankZero() ? KeepOnlyTheBestCheckpoint(args_, state_) : Status::Ok());
  json train = {{"epoch", state_.epoch},
                {"total_flos", state_.total_flos},
                {"train_loss", train_loss},
                {"train_samples", data_.train.size()}};
  // Speeds over this process's steps: none when it only wrote the results of a finished run.
  if (trained_here) train.update(SpeedMetrics(args_, plan_, data_.train.size(), runtime));
  json final_log = train;
  final_log.erase("train_samples");
  final_log["step"] = state_.global_step;
  state_.log_history.push_back(final_log);

  json eval = json::object();
  if (data_.eval.size() > 0) {
    LOCKSTEP_RETURN_IF_ERROR(EvaluateModel(
        model_.get(), data_.eval, args_, device_, &job_, [this] { return Now(); }, &eval));
    eval["epoch"] = state_.epoch;
    eval["eval_samples"] = data_.eval.size();
    if (args_.model == "gpt" && eval.contains("eval_loss"))
      eval["perplexity"] = std::exp(eval["eval_loss"].get<double>());
  }
  json all = train;
  all.update(eval);
  result->train_loss = train_loss;
  result->train_metrics = train;
  result->eval_metrics = eval;
  result->best_model_checkpoint = state_.best_model_checkpoint;
  if (!IsRankZero()) return Status::Ok();  // rank 0 writes the job's results
  LOCKSTEP_RETURN_IF_ERROR(WriteJsonFile((out / kTrainResultsFile).string(), train));
  if (!eval.empty()) LOCKSTEP_RETURN_IF_ERROR(WriteJsonFile((out / kEvalResultsFile).string(), eval));
  LOCKSTEP_RETURN_IF_ERROR(WriteJsonFile((out / kAllResultsFile).string(), all));
  LOCKSTEP_RETURN_IF_ERROR(WriteJsonFile((out / kTrainerStateFile).string(), state_.ToJson()));
  return step_log_->Close();
}

Status RunTraining(const TrainingArgs& args, const TrainOptions& options, TrainResult* result) {
  LOCKSTEP_RETURN_IF_ERROR(ValidateTrainingArgs(args));
  LOCKSTEP_RETURN_IF_ERROR(CheckMemoryFits(args, AvailableMemoryBytes()));
  if (!options.record_steps && args.save_strategy != "no") {
    return Status::InvalidArgument(
        "--no-step-log only measures what recording costs: it needs --save_strategy no "
        "(a checkpoint without step records could be neither resumed nor verified)");
  }
  try {
    TrainingRun run(args, options);
    LOCKSTEP_RETURN_IF_ERROR(run.Setup());
    LOCKSTEP_RETURN_IF_ERROR(run.Train());
    return run.Finish(result);
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("LibTorch error: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Status::Internal(std::string("training failed: ") + e.what());
  }
}

}  // namespace lockstep
