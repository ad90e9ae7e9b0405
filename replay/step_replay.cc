// ReplayRunSteps: a resumed run in a scratch directory, driven through the trainer's API
// (trainer.h) in its replay mode: each step starts from its logged record and the caller
// judges the record it recomputes.
#include "replay/step_replay.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "formats/checkpoint.h"
#include "formats/checksum.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/step_log.h"
#include "trainer/loop_state.h"
#include "trainer/trainer.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

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
