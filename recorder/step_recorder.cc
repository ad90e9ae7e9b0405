#include "lockstep/recorder.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <filesystem>

#include "formats/run_lock.h"
#include "formats/step_log.h"
#include "recorder/generator_state.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace {

std::string LogPath(const std::string& run_dir) { return (fs::path(run_dir) / kStepLogFile).string(); }

StepLogOptions LogOptions(const RecorderOptions& o) {
  StepLogOptions s;
  s.records_per_frame = o.records_per_frame;
  return s;
}

}  // namespace

class StepRecorder::Impl {
 public:
  Impl(std::unique_ptr<RunLock> lock, std::unique_ptr<StepLogWriter> log, const RecorderOptions& options,
       int64_t last_step)
      : lock(std::move(lock)), log(std::move(log)), options(options), last_step(last_step) {}

  std::unique_ptr<RunLock> lock;       // run_dir's one writer, until the recorder is destroyed
  std::unique_ptr<StepLogWriter> log;  // null once closed
  RecorderOptions options;
  int64_t last_step = 0;
  GeneratorStates rng;  // captured by BeginStep, for the next EndStep
  bool begun = false;
};

StepRecorder::StepRecorder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StepRecorder::~StepRecorder() {
  if (impl_->log) impl_->log->Close();
}

Status StepRecorder::Create(const std::string& run_dir, const json& settings, const RecorderOptions& options,
                            std::unique_ptr<StepRecorder>* out) {
  // `{}` in a call is a null json: no settings.
  if (!settings.is_object() && !settings.is_null())
    return Status::InvalidArgument("StepRecorder::Create: settings must be a JSON object");
  if (options.rng_full_state_every < 1 || options.records_per_frame < 1) {
    return Status::InvalidArgument("StepRecorder: rng_full_state_every and records_per_frame must be >= 1");
  }
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) return Status::IOError(run_dir + ": cannot create: " + ec.message());
  std::unique_ptr<RunLock> lock;
  LOCKSTEP_RETURN_IF_ERROR(RunLock::Acquire(run_dir, "lockstep::StepRecorder", &lock));
  if (fs::exists(LogPath(run_dir))) {
    return Status::InvalidArgument(LogPath(run_dir) +
                                   " exists: resume it (StepRecorder::Resume) or choose another run_dir");
  }
  const json header = {{kStepLogRecorderKey, "lockstep::StepRecorder"},
                       {"torch_version", TORCH_VERSION},
                       {"device", torch::cuda::is_available() ? "cuda" : "cpu"},
                       {"training_args", settings.is_null() ? json::object() : settings},
                       {"rng_full_state_every", options.rng_full_state_every}};
  std::unique_ptr<StepLogWriter> log;
  LOCKSTEP_RETURN_IF_ERROR(StepLogWriter::Create(LogPath(run_dir), header, LogOptions(options), &log));
  out->reset(new StepRecorder(std::make_unique<Impl>(std::move(lock), std::move(log), options, 0)));
  return Status::Ok();
}

// Cuts the log at the end of `step`'s record. A frame is the unit of writing, so the log
// is kept up to the start of the frame holding that record, and the frame's records up to
// it are written again (none, when the run flushed there, as it does at a checkpoint).
Status StepRecorder::Resume(const std::string& run_dir, int64_t step, const RecorderOptions& options,
                            std::unique_ptr<StepRecorder>* out) {
  const std::string path = LogPath(run_dir);
  if (!fs::exists(path)) return Status::NotFound(path + ": no step log to resume (StepRecorder::Create starts one)");
  std::unique_ptr<RunLock> lock;
  LOCKSTEP_RETURN_IF_ERROR(RunLock::Acquire(run_dir, "lockstep::StepRecorder (resume)", &lock));
  StepLogContents log;
  LOCKSTEP_RETURN_IF_ERROR(ReadStepLog(path, &log));                           // a truncated tail is cut with the rest
  uint64_t frame_start = log.frame_ends.empty() ? 0 : log.frame_ends.front();  // after the header
  uint64_t frame_end = frame_start;
  if (step > 0) {
    size_t i = 0;
    while (i < log.records.size() && log.records[i].step != step) ++i;
    if (i == log.records.size())
      return Status::NotFound(path + ": no record of step " + std::to_string(step) + " to resume after");
    frame_end = log.record_frame_ends[i];
    const auto it = std::find(log.frame_ends.begin(), log.frame_ends.end(), frame_end);
    frame_start = it == log.frame_ends.begin() ? 0 : *(it - 1);
  }
  StepLogContents frame;  // the records of the cut frame up to `step` are written again, events included
  if (frame_end > frame_start) LOCKSTEP_RETURN_IF_ERROR(ReadStepLogFrame(path, frame_start, frame_end, &frame));
  std::unique_ptr<StepLogWriter> writer;
  LOCKSTEP_RETURN_IF_ERROR(StepLogWriter::OpenForAppend(path, frame_start, "", LogOptions(options), &writer));
  size_t event = 0;
  for (size_t i = 0; i < frame.records.size(); ++i) {
    for (; event < frame.events.size() && frame.events[event].steps_before <= i; ++event) {
      json body = frame.events[event].record;
      const std::string kind = body[step_key::kKind];
      body.erase(step_key::kKind);
      LOCKSTEP_RETURN_IF_ERROR(writer->AppendEvent(kind, body));
    }
    const bool last = frame.records[i].step == step;
    LOCKSTEP_RETURN_IF_ERROR(writer->Append(std::move(frame.records[i])));
    if (last) break;
  }
  LOCKSTEP_RETURN_IF_ERROR(writer->AppendEvent(event_key::kResume, {{event_key::kAfterStep, step}}));
  out->reset(new StepRecorder(std::make_unique<Impl>(std::move(lock), std::move(writer), options, step)));
  return Status::Ok();
}

void StepRecorder::BeginStep() {
  const int64_t step = impl_->last_step + 1;
  const bool full = step == 1 || (step - 1) % impl_->options.rng_full_state_every == 0;
  impl_->rng = {{step_key::kCpu, GeneratorStateOf(GeneratorStateBytes(DefaultGenerator(torch::kCPU)), full)}};
  if (torch::cuda::is_available())
    impl_->rng[step_key::kCuda] = GeneratorStateOf(GeneratorStateBytes(DefaultGenerator(torch::kCUDA)), full);
  impl_->begun = true;
}

Status StepRecorder::EndStep(StepRecord r) {
  if (!impl_->log) return Status::InvalidArgument("StepRecorder: closed");
  if (!impl_->begun)
    return Status::InvalidArgument("StepRecorder: step " + std::to_string(r.step) + " ended without BeginStep");
  if (r.step != impl_->last_step + 1) {
    return Status::InvalidArgument("StepRecorder: step " + std::to_string(r.step) + " after step " +
                                   std::to_string(impl_->last_step) + " (steps are recorded in order, one each)");
  }
  r.rng = std::move(impl_->rng);  // the loop's fields; the generator states come from BeginStep
  impl_->begun = false;
  impl_->last_step = r.step;
  return impl_->log->Append(std::move(r));  // made JSON off the loop
}

Status StepRecorder::Flush() {
  if (!impl_->log) return Status::InvalidArgument("StepRecorder: closed");
  return impl_->log->Flush(/*sync=*/true);
}

Status StepRecorder::Close() {
  if (!impl_->log) return Status::InvalidArgument("StepRecorder: closed");
  Status st = impl_->log->Close();
  impl_->log.reset();
  impl_->lock.reset();  // another recorder may write run_dir now
  return st;
}

}  // namespace lockstep
