// Replay: the parts of a training step a replay changes (training_run.h), and
// ReplayRunSteps, which drives a resumed run in a scratch directory.
#include "trainer/step_replay.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "formats/checkpoint.h"
#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/module_trace.h"
#include "formats/step_log.h"
#include "trainer/torch_bridge.h"
#include "trainer/training_run.h"

namespace fs = std::filesystem;

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

// A checkpoint names the digest of the step log up to its step, and RUN's log must begin
// with exactly those bytes: then `*proven` is set, and the resume needs nothing more of the
// log (it reads the one frame at the checkpoint's step). When the log does not begin so,
// a checkpoint outside RUN is another run's; RUN's own says its log was damaged or cut
// after the save. Both name RUN's file, not the scratch copy the resume continues.
Status CheckCheckpointOfRun(const std::string& run_dir, const std::string& checkpoint, bool* proven) {
  *proven = false;
  json loop;
  LoopState saved;
  if (!ReadJsonFile(checkpoint + "/" + kLoopStateFile, &loop).ok() || !loop.is_object() ||
      !LoopState::FromJson(loop, checkpoint, &saved).ok() || !saved.step_log || saved.step_log->xxh3_128.empty()) {
    return Status::Ok();  // an older checkpoint, or one the resume will name as damaged
  }
  const uint64_t bytes = saved.step_log->bytes;
  const std::string& digest = saved.step_log->xxh3_128;
  const std::string log = run_dir + "/" + kStepLogFile;
  const int fd = ::open(log.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Ok();  // the resume names it
  Xxh3Stream stream;
  uint64_t read = 0;
  const Status st = Xxh3Fd(fd, log, bytes, &stream, &read);
  ::close(fd);
  if (!st.ok()) return st;
  if (read == bytes && stream.HexDigest() == digest) {
    *proven = true;
    return Status::Ok();
  }
  const std::string saw = std::to_string(bytes) + " bytes, XXH3-128 " + digest;
  std::error_code ec;
  const fs::path holder = fs::weakly_canonical(fs::path(checkpoint).parent_path(), ec);
  if (holder == fs::weakly_canonical(run_dir, ec)) {
    return Status::Corruption(log + " does not begin with the step log " + checkpoint + " saved (" + saw +
                              "): the log was damaged or cut after that checkpoint");
  }
  return Status::InvalidArgument(checkpoint + " is another run's checkpoint: " + log +
                                 " does not begin with the step log it saved (" + saw +
                                 "); replay RUN from one of its own checkpoints (--from checkpoint-N)");
}

}  // namespace

Status TrainingRun::BeginReplayedStep(int64_t step, std::optional<StepRecord>* logged) {
  StepRecord& record = logged->emplace();
  LOCKSTEP_RETURN_IF_ERROR(options_.hooks.replay_step_begin(step, &record));
  if (!IsRankZero()) {
    // Rank r of a data-parallel replay trains on what rank r drew: the record's other ranks.
    const size_t at = static_cast<size_t>(rank_ - 1);
    record.batches = at < record.batches_other_ranks.size() ? record.batches_other_ranks[at] : Batches();
    record.rng = at < record.rng_other_ranks.size() ? record.rng_other_ranks[at] : GeneratorStates();
  }
  LOCKSTEP_RETURN_IF_ERROR(RestoreLoggedGenerator(record.rng, step_key::kCpu, DefaultGenerator(torch::kCPU), step));
  if (device_.is_cuda()) {
    LOCKSTEP_RETURN_IF_ERROR(RestoreLoggedGenerator(record.rng, step_key::kCuda, DefaultGenerator(torch::kCUDA), step));
  }
  return Status::Ok();
}

// The logged sample ids replace the sampler's when they fit this step's window and the
// data set; when they do not, the sampler's stay and the judge reports the data mismatch.
void TrainingRun::UseLoggedBatches(const StepRecord& logged, std::vector<torch::Tensor>* ids) const {
  if (logged.batches.size() != ids->size()) return;
  std::vector<torch::Tensor> out;
  for (const auto& b : logged.batches) {
    for (int64_t id : b) {
      if (id < 0 || id >= data_.train.size()) return;
    }
    out.push_back(torch::tensor(b, torch::kInt64));
  }
  *ids = std::move(out);
}

// Rank 0 judges the job's record (it holds every rank's batches and digests); the ranks
// then stop together where it says.
Status TrainingRun::EndReplayedStep(const StepRecord& record) {
  bool stop = false;
  if (IsRankZero()) {
    StepRecord as_logged = record;  // raw RNG states become digests, as the log stores them
    DigestRawStates(&as_logged);
    LOCKSTEP_RETURN_IF_ERROR(options_.hooks.replay_step_end(as_logged, &stop));
  }
  if (world_ > 1) {
    torch::Tensor flag = torch::tensor({stop ? 1.0 : 0.0}, torch::kFloat64);
    LOCKSTEP_RETURN_IF_ERROR(group_->AllReduceSum(&flag, "agreeing where the replay stops"));
    stop = flag.item<double>() > 0;
  }
  replay_stop_ = stop;
  return Status::Ok();
}

void TrainingRun::StartTrace(int64_t /*step*/) {
  if (!options_.hooks.on_trace) return;
  const std::string fault = options_.faults.numerics_module;
  model_->SetTracer([this, fault](const std::string& module, const torch::Tensor& out) {
    const torch::Tensor result = module == fault ? out * (1.0 + std::ldexp(1.0, -23)) : out;
    torch::Tensor c = result.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    options_.hooks.on_trace(ModuleTraceEntry("forward", module, trace_micro_batch_, c.sizes().vec(),
                                             c.data_ptr<float>(), static_cast<size_t>(c.numel())));
    return result;
  });
}

void TrainingRun::FinishTrace() {
  model_->SetTracer(nullptr);
  if (!options_.hooks.on_trace) return;
  for (const auto& p : model_->named_parameters()) {
    if (!p.value().grad().defined()) continue;
    torch::Tensor g = p.value().grad().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    options_.hooks.on_trace(
        ModuleTraceEntry("grad", p.key(), -1, g.sizes().vec(), g.data_ptr<float>(), static_cast<size_t>(g.numel())));
  }
}

Status ReplayRunSteps(const ReplayRequest& request, ReplayRunInfo* info) {
  const auto start = std::chrono::steady_clock::now();
  LOCKSTEP_RETURN_IF_ERROR(ValidateCheckpoint(request.checkpoint, VerifyMode::kChecksums));
  bool log_proven = false;
  LOCKSTEP_RETURN_IF_ERROR(CheckCheckpointOfRun(request.run_dir, request.checkpoint, &log_proven));
  int64_t from = 0;
  if (!ParseCheckpointDirName(fs::path(request.checkpoint).filename().string(), &from)) {
    return Status::InvalidArgument(request.checkpoint + ": not a checkpoint-N directory");
  }
  json saved;
  TrainingArgs args;
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(request.checkpoint + "/" + kTrainingArgsJsonFile, &saved));
  LOCKSTEP_RETURN_IF_ERROR(ApplyArgsJson(saved, request.checkpoint + "/" + kTrainingArgsJsonFile, &args));

  // The resume continues a copy of the run's step log in a scratch run directory, and reads
  // the checkpoint in place. A log the checkpoint's digest did not prove is read where it
  // is first, so its damage names the run's file, not the copy.
  const std::string log = request.run_dir + "/" + kStepLogFile;
  if (!log_proven) {
    StepLogContents contents;
    LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(log, &contents));
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string scratch = std::string(tmp && *tmp ? tmp : "/tmp") + "/lockstep-replay-XXXXXX";
  if (::mkdtemp(scratch.data()) == nullptr) return Status::IOError(scratch + ": cannot create a scratch directory");
  Status st = CopyTree(log, scratch + "/" + kStepLogFile);
  if (st.ok()) {
    args.output_dir = scratch;
    if (!request.device.empty()) args.device = request.device;
    if (request.num_threads > 0) args.num_threads = request.num_threads;
    TrainOptions options;
    options.show_progress = false;
    options.warn_on_override = false;  // a replay elsewhere is asked for, not a mistake
    options.resume_from = request.checkpoint;
    // Another device or thread count makes a different run: allowed here, and what is judged.
    options.resume_override =
        (!request.device.empty() && request.device != saved.value("device", std::string())) ||
        (request.num_threads > 0 && json(request.num_threads) != saved.value("num_threads", json()));
    options.stop_after_step = from + request.steps;
    options.hooks.write_checkpoints = false;
    options.hooks.replay_step_begin = request.step_begin;
    options.hooks.replay_step_end = request.step_end;
    options.hooks.trace_step = request.trace_step;
    options.hooks.on_trace = request.on_trace;
    options.faults.numerics_module = request.numerics_fault_module;
    TrainResult result;
    st = RunTraining(args, options, &result);
    info->device = result.device;
    info->num_threads = result.num_threads;
  }
  RemoveTree(scratch);  // best effort: a leftover scratch copy harms nothing
  if (st.IsIOError()) {
    // The replay writes only its scratch copy; it reads the run and the checkpoint, which
    // ValidateCheckpoint read whole above. A checkpoint that no longer validates was changed
    // or removed meanwhile: that is the cause. Otherwise a write failed in TMPDIR (full).
    const Status now = ValidateCheckpoint(request.checkpoint, VerifyMode::kSizes);
    st = !now.ok() ? Status::IOError(request.checkpoint + " changed during the replay: " + now.message())
                   : st.WithMessage("replay's scratch copy under " + fs::path(scratch).parent_path().string() +
                                    " (set TMPDIR elsewhere): " + st.message());
  }
  info->from_step = from;
  info->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return st;
}

}  // namespace lockstep
