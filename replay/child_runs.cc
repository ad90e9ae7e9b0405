// Running the child `lockstep train` processes of verify-resume, one at a time: their
// events, their kills, their exits, and what the next one resumes from.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "formats/checkpoint.h"
#include "formats/json_file.h"
#include "process/child_process.h"
#include "replay/verify_internal.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
namespace verify {
namespace {

std::vector<std::string> SkipWarnings(const std::string& stderr_path, std::streamoff from) {
  std::ifstream in(stderr_path);
  in.seekg(from);
  std::vector<std::string> out;
  const std::string prefix = "warning: skipping ";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line.substr(prefix.size()));
  }
  return out;
}

std::string LastLines(const std::string& path, std::streamoff from, size_t max_chars = 800) {
  std::ifstream in(path);
  in.seekg(from);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > max_chars) text = "..." + text.substr(text.size() - max_chars);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

std::string Format(const char* fmt, double a) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, a);
  return buf;
}

namespace {

// What a child's exit means: the kill we planned (or it planned, at an I/O call), a failure
// (exit 2, the child refusing its settings, is bad usage: InvalidArgument), or a run that
// finished, whose --json result is read.
Status JudgeExit(Context* ctx, const std::string& label, const std::string& stdout_path, const std::string& stderr_path,
                 int exit_code, int signal, bool self_kill, ChildRun* out) {
  // A job's launcher reports a killed rank as 128 + SIGKILL.
  if ((out->killed || self_kill) && (signal == SIGKILL || exit_code == 128 + SIGKILL)) {
    out->killed = true;
    return Status::Ok();
  }
  out->killed = false;  // it finished before the kill landed
  if (exit_code != 0) {
    const std::string why = label + ": lockstep train exited with " +
                            (signal ? "signal " + std::to_string(signal) : "code " + std::to_string(exit_code)) +
                            ":\n" + LastLines(stderr_path, 0);
    // Exit 2 is the child refusing its settings (or this build refusing the job): bad usage
    // of verify-resume too, never a failed check.
    return signal == 0 && exit_code == 2 ? Status::InvalidArgument(why) : Status::IOError(why);
  }
  LOCKSTEP_RETURN_IF_ERROR(ReadJsonFile(stdout_path, &out->result));
  const auto runtime = out->result.find("runtime_s");
  if (runtime != out->result.end() && runtime->is_number()) ctx->children_training_s += runtime->get<double>();
  return Status::Ok();
}

}  // namespace

Status RunChild(Context* ctx, const std::string& label, const std::string& dir, const std::vector<std::string>& extra,
                const KillPlan* kill, ChildRun* out) {
  *out = ChildRun();
  const int attempt = ++ctx->attempts;
  const std::string logs = ctx->work_dir + "/logs";
  fs::create_directories(logs);
  const std::string stem = logs + "/" + std::to_string(attempt) + "-" + label;
  const std::string stdout_path = stem + ".json", stderr_path = stem + ".stderr";
  std::vector<std::string> argv = {ctx->options.lockstep_binary,
                                   "train",
                                   "--config",
                                   ctx->config_path,
                                   "--output_dir",
                                   dir,
                                   "--quiet",
                                   "--json",
                                   "--event-fd",
                                   std::to_string(ChildProcess::kEventFd)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const bool own_size = std::find(extra.begin(), extra.end(), "--nproc_per_node") != extra.end();  // --world
  if (ctx->options.nproc_per_node > 1 && !own_size)
    argv.insert(argv.end(), {"--nproc_per_node", std::to_string(ctx->options.nproc_per_node)});
  const bool self_kill = kill != nullptr && kill->io_call > 0;
  if (self_kill)
    argv.insert(argv.end(), {"--crash-at-io", std::to_string(kill->step) + ":" + std::to_string(kill->io_call)});
  std::unique_ptr<ChildProcess> child;
  LOCKSTEP_RETURN_IF_ERROR(ChildProcess::Start(argv, stdout_path, stderr_path, &child, ctx->options.run_child));

  Clock::time_point first_step_at, last_step_at, save_at, last_note = Clock::now();
  int64_t steps_seen = 0, saves_seen = 0;
  double save_seconds = 0;
  std::string name;
  int64_t step = 0;
  while (true) {
    const auto next = child->NextEvent(ctx->options.child_timeout_s, &name, &step);
    if (next == ChildProcess::Next::kEnd) break;
    if (next == ChildProcess::Next::kTimeout) {
      child->Kill();
      return Status::IOError(label + ": lockstep train (pid " + std::to_string(child->pid()) + ") was silent for " +
                             Format("%.0f", ctx->options.child_timeout_s) + " s and was killed; see " + stderr_path);
    }
    const auto now = Clock::now();
    if (name == "step") {
      out->last_step = step;
      if (steps_seen++ == 0) first_step_at = now;
      last_step_at = now;
      if (std::chrono::duration<double>(now - last_note).count() > 0.1) {
        ctx->Say(label + ": step " + std::to_string(step) + "/" + std::to_string(ctx->max_steps), true);
        last_note = now;
      }
    } else if (name == "save") {
      out->last_save = step;
      save_at = now;
    } else if (name == "saved") {
      out->last_saved = step;
      save_seconds += std::chrono::duration<double>(now - save_at).count();
      ++saves_seen;
    } else if (name == "resumed") {
      out->resumed_at = step;
    } else if (name == "save-io") {
      out->save_io_calls.push_back(step);
    }
    if (kill && !self_kill && !out->killed && name == kill->event && step == kill->step) {
      std::this_thread::sleep_for(std::chrono::duration<double>(kill->delay_s));
      if (kill->rank < 0 || !child->KillRank(kill->rank)) child->Kill();
      out->killed = true;
    }
  }
  int exit_code = 0, signal = 0;
  LOCKSTEP_RETURN_IF_ERROR(child->Wait(&exit_code, &signal));
  out->skipped = SkipWarnings(stderr_path, 0);
  if (steps_seen > 1) {
    out->mean_step_s = std::chrono::duration<double>(last_step_at - first_step_at).count() / (steps_seen - 1);
  }
  if (saves_seen > 0) out->mean_save_s = save_seconds / saves_seen;
  return JudgeExit(ctx, label, stdout_path, stderr_path, exit_code, signal, self_kill, out);
}

std::vector<std::string> ResumeFlags(const Context& ctx) {
  std::vector<std::string> flags = {"--resume"};
  if (ctx.options.fault != ResumeFault::kNone) {
    flags.insert(flags.end(), {"--fault-inject", ResumeFaultName(ctx.options.fault)});
  }
  return flags;
}

std::vector<std::string> StagingLeftovers(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (IsCheckpointLeftover(name)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> ContinueFlags(const Context& ctx, const std::string& dir) {
  CheckpointDir latest;
  std::vector<SkippedCheckpoint> skipped;
  if (FindLatestValidCheckpoint(dir, VerifyMode::kChecksums, &latest, &skipped).ok()) return ResumeFlags(ctx);
  return {"--overwrite_output_dir", "true"};
}

void NoteResume(const ChildRun& run, VariantReport* v) {
  if (v->interruptions.empty() || v->interruptions.back().resumed_at != -1) return;
  v->interruptions.back().resumed_at = std::max<int64_t>(run.resumed_at, 0);
  v->interruptions.back().skipped = run.skipped;
}

}  // namespace verify
}  // namespace lockstep
