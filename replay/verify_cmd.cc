#include "replay/verify_cmd.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/run_layout.h"
#include "formats/torch_archive.h"
#include "formats/zip_archive.h"
#include "inspect/audit.h"
#include "process/child_process.h"

namespace fs = std::filesystem;

namespace lockstep {

namespace {

// The Trainer writes trainer_state.json last (formats/checkpoint_layout.h): a checkpoint-N
// holding any of its files but that one, or that one cut short, is a save that never
// finished; and its resume requires the weights (formats' MissingModelWeights, the audit's
// rule too).
std::string UnfinishedHfSave(const std::string& checkpoint) {
  if (Exists(checkpoint + "/" + hf::kIncompleteMarkerFile)) {
    return std::string(hf::kIncompleteMarkerFile) + ": the Trainer's JIT save never finished";
  }
  if (!Exists(checkpoint + "/" + kTrainerStateFile)) {
    return "no " + std::string(kTrainerStateFile) + ": the Trainer writes it last, so its save never finished";
  }
  nlohmann::json state;  // stopped while writing it, it is there but cut short
  const Status st = ReadJsonFile(checkpoint + "/" + kTrainerStateFile, &state);
  if (!st.ok()) return st.message();
  return MissingModelWeights(checkpoint);  // the Trainer's resume refuses a checkpoint without them
}

// Every zip archive of `checkpoint` (torch.save's files) whole: one cut short has lost its
// directory. A file that does not begin as a zip is not judged.
std::string TruncatedArchive(const std::string& checkpoint) {
  const std::vector<std::string> files =
      IsDirectory(checkpoint) ? FilesBelow(checkpoint) : std::vector<std::string>{""};
  for (const auto& f : files) {
    const std::string path = f.empty() ? checkpoint : checkpoint + "/" + f;
    std::vector<ZipEntry> entries;
    if (LooksLikeZip(path) && !ListZip(path, &entries).ok()) {
      return (f.empty() ? fs::path(path).filename().string() : f) + " is cut short: its save never finished";
    }
  }
  return "";
}

}  // namespace

std::string UnfinishedSave(const std::string& checkpoint, const std::set<std::string>* whole) {
  if (whole != nullptr && IsDirectory(checkpoint)) {
    const std::set<std::string> held = CheckpointFileSet(checkpoint);
    for (const auto& f : *whole) {
      if (!held.count(f))
        return "no " + f + ", which every checkpoint of the reference run holds: its save never finished";
    }
  }
  if (!IsDirectory(checkpoint)) return TruncatedArchive(checkpoint);  // a Lightning .ckpt
  std::error_code ec;
  if (fs::is_empty(checkpoint, ec) || ec) return "empty: its save had written nothing yet";
  const std::string layout = CheckpointLayout(checkpoint);
  if (layout == layout::kLockstep) {
    const Status st = ValidateCheckpoint(checkpoint, VerifyMode::kSizes);
    return st.ok() ? "" : st.message();
  }
  if (layout == layout::kHf) return UnfinishedHfSave(checkpoint);
  if (layout == layout::kDcp && !IsDcpDirectory(checkpoint)) return "no .metadata: DCP writes it last";
  if (layout == layout::kAccelerate || layout == layout::kDcp) return TruncatedArchive(checkpoint);
  // The Trainer's first files (config.json, the weights) before any of its own: a save cut short.
  for (const char* written : hf::kWrittenBeforeTrainerState) {
    if (Exists(checkpoint + "/" + written)) {
      return "no " + std::string(kTrainerStateFile) + ": the Trainer writes it last, so its save never finished";
    }
  }
  if (!ModelWeightsFile(checkpoint).empty())
    return "no " + std::string(kTrainerStateFile) + " beside its weights: its save never finished";
  // safetensors writes each file under a hidden temporary name (.tmpXXXXXX) and renames it
  // when whole: a checkpoint-N holding nothing else had its first file cut short.
  std::string hidden;
  for (const auto& e : fs::directory_iterator(checkpoint, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] != '.') return TruncatedArchive(checkpoint);  // a script's own format
    hidden = name;
  }
  return "holds only " + hidden + ", a file still being written: its save never finished";
}

namespace {

using Clock = std::chrono::steady_clock;

std::string Substitute(std::string text, const std::string& key, const std::string& value) {
  for (size_t at = 0; (at = text.find(key, at)) != std::string::npos; at += value.size())
    text.replace(at, key.size(), value);
  return text;
}

// The step a checkpoint of `dir` was saved at (its name says: checkpoint-N, Lightning's
// step=N), -1 for none.
int64_t CheckpointStep(const std::string& path) {
  std::vector<RunCheckpoint> listed;
  if (!ListRunCheckpoints(fs::path(path).parent_path().string(), &listed).ok()) return -1;
  for (const auto& c : listed) {
    if (c.path == path) return c.step;
  }
  return -1;
}

// The run's checkpoints a resume can start from: checkpoint-N directories, and Lightning's
// .ckpt files; in save order.
std::vector<RunCheckpoint> ResumableKinds(const std::string& dir) {
  std::vector<RunCheckpoint> listed, out;
  if (!ListRunCheckpoints(dir, &listed).ok()) return out;
  for (const auto& c : listed) {
    int64_t step;
    if (ParseCheckpointDirName(fs::path(c.name).filename().string(), &step) || c.is_file) out.push_back(c);
  }
  return out;
}

// The newest checkpoint of `dir`, "" for none.
std::string NewestCheckpoint(const std::string& dir) {
  const std::vector<RunCheckpoint> listed = ResumableKinds(dir);
  return listed.empty() ? "" : listed.back().path;
}

// The newest checkpoint of `dir` whose save finished (judged against `whole`, the files
// every checkpoint of the reference holds, once it is known); newer ones passed over go to
// `skipped`, with why.
std::string NewestResumable(const std::string& dir, std::vector<std::string>* skipped = nullptr,
                            const std::set<std::string>* whole = nullptr) {
  const std::vector<RunCheckpoint> listed = ResumableKinds(dir);
  for (auto it = listed.rbegin(); it != listed.rend(); ++it) {
    const std::string why = UnfinishedSave(it->path, whole);
    if (why.empty()) return it->path;
    if (skipped) skipped->push_back(it->name + " (" + why + ")");
  }
  return "";
}

// The files every checkpoint directory of the finished run `dir` holds.
std::set<std::string> WholeCheckpointFiles(const std::string& dir) {
  std::set<std::string> common;
  bool first = true;
  for (const auto& c : ResumableKinds(dir)) {
    if (c.is_file) continue;
    const std::set<std::string> files = CheckpointFileSet(c.path);
    if (first) {
      common = files, first = false;
      continue;
    }
    std::set<std::string> both;
    std::set_intersection(common.begin(), common.end(), files.begin(), files.end(), std::inserter(both, both.end()));
    common.swap(both);
  }
  return common;
}

// The audit's notes on `checkpoint` when it is complete but not resumable.
std::vector<std::string> NotResumableBecause(const std::string& checkpoint) {
  const CheckpointAudit audit = AuditCheckpoint(checkpoint);
  return audit.status == "complete" && !audit.resumable ? audit.notes : std::vector<std::string>();
}

struct Interrupt {
  int signal = 0;      // 0: run to the end
  double delay_s = 0;  // after the first checkpoint appears
};

// Runs `command` (exec'd by sh, so a signal reaches the trainer itself) until it ends, or
// interrupts it as `interrupt` says. The command leads a process group of its own, and an
// interruption reaches the whole group (a launcher such as torchrun and its workers); once
// its leader has ended, what of the group still lives is SIGKILLed and waited for, so no
// process of an interrupted run writes into it while the resume starts. `*how` describes
// what happened.
Status RunCommand(const VerifyCmdOptions& o, const std::string& label, const std::string& command, Interrupt interrupt,
                  std::string* how, double* checkpointed_s = nullptr, const std::set<std::string>* whole = nullptr) {
  const std::string log = o.work_dir + "/" + label + ".log";
  std::unique_ptr<ChildProcess> child;
  LOCKSTEP_RETURN_IF_ERROR(
      ChildProcess::Start({"/bin/sh", "-c", "exec " + command}, log, log, &child, {}, /*own_group=*/true));
  const auto start = Clock::now();
  std::optional<Clock::time_point> first_checkpoint;
  std::string name;
  int64_t step = 0;
  bool sent = false;
  // Until the command itself ends: its workers hold the event pipe too, and one a launcher
  // left behind must not keep the run going (EndGroup, below, ends it).
  while (child->NextEvent(0.005, &name, &step) != ChildProcess::Next::kEnd && !child->Exited()) {
    const auto now = Clock::now();
    if (std::chrono::duration<double>(now - start).count() > o.timeout_s) {
      child->Kill();
      return Status::IOError(label + ": the command ran past " + std::to_string(static_cast<int>(o.timeout_s)) +
                             " s and was killed; see " + log + LogTail(log));
    }
    // The run has checkpointed once a checkpoint is whole, not when its directory appears.
    if (!first_checkpoint && !NewestCheckpoint(o.work_dir + "/" + label).empty() &&
        !NewestResumable(o.work_dir + "/" + label, nullptr, whole).empty()) {
      first_checkpoint = now;
    }
    if (interrupt.signal == 0 || sent) continue;
    if (first_checkpoint && std::chrono::duration<double>(now - *first_checkpoint).count() >= interrupt.delay_s) {
      child->Signal(interrupt.signal);
      sent = true;
      char text[128];
      std::snprintf(text, sizeof(text), "%s %.0f ms after the first checkpoint appeared",
                    interrupt.signal == SIGTERM ? "SIGTERM" : "SIGKILL", interrupt.delay_s * 1e3);
      *how = text;
    }
  }
  int code = 0, sig = 0;
  LOCKSTEP_RETURN_IF_ERROR(child->Wait(&code, &sig));
  std::vector<pid_t> survivors;
  const Status ended = child->EndGroup(10, &survivors);
  if (!ended.ok()) return Status::IOError(label + ": " + ended.message());
  if (sent && !survivors.empty()) {
    *how += ", then " + std::to_string(survivors.size()) + " process(es) of its group that outlived it SIGKILLed";
  }
  // How long the run went on after its first checkpoint: the span the kills are spread over.
  if (checkpointed_s)
    *checkpointed_s = first_checkpoint ? std::chrono::duration<double>(Clock::now() - *first_checkpoint).count() : 0;
  if (interrupt.signal != 0 && !sent) *how = "ended before the interruption";
  const bool interrupted = sent && (sig != 0 || code != 0);
  if (!interrupted && code != 0) {
    return Status::InvalidArgument(label + ": the command failed (" +
                                   (sig ? "signal " + std::to_string(sig) : "exit " + std::to_string(code)) +
                                   "); see " + log + LogTail(log));
  }
  return Status::Ok();
}

}  // namespace

int64_t VerifyCmdReport::counted() const {
  return std::count_if(variants.begin(), variants.end(),
                       [](const VerifyCmdVariant& v) { return v.not_counted.empty(); });
}

bool VerifyCmdReport::bit_exact() const {
  for (const auto& v : variants) {
    if (v.not_counted.empty() && !v.diff.identical()) return false;
  }
  return counted() > 0;
}

namespace {

// The command of a run that writes `dir` as a job of `world` processes.
std::string CommandFor(const VerifyCmdOptions& o, const std::string& dir, int64_t world) {
  std::string c = Substitute(o.command, "{output_dir}", dir);
  c = Substitute(c, "{world}", std::to_string(world));
  return Substitute(c, "{nproc}", std::to_string(world));
}

// One interrupted run of the command, and the world size its resume runs at.
struct VariantPlan {
  std::string name;
  Interrupt interrupt;
  int64_t resume_world;
};

}  // namespace

Status VerifyResumeCommand(const VerifyCmdOptions& o, VerifyCmdReport* report) {
  *report = VerifyCmdReport();
  if (o.command.find("{output_dir}") == std::string::npos) {
    return Status::InvalidArgument("--cmd must name where a run writes: put {output_dir} in it");
  }
  const bool takes_size =
      o.command.find("{world}") != std::string::npos || o.command.find("{nproc}") != std::string::npos;
  if (!o.worlds.empty() && !takes_size) {
    return Status::InvalidArgument(
        "--world needs the command to take the world size: put {world} in --cmd (e.g. "
        "torchrun --nproc_per_node {world} train.py --output_dir {output_dir})");
  }
  for (const auto& [from, to] : o.worlds) {
    if (from != o.world) {
      return Status::InvalidArgument("--world " + std::to_string(from) + ":" + std::to_string(to) +
                                     ": the reference runs at " + std::to_string(o.world) +
                                     " (--nproc_per_node, or the first --world pair's A); every --world pair starts "
                                     "from that size");
    }
  }
  if (o.resume_arg.find("{checkpoint}") == std::string::npos) {
    return Status::InvalidArgument("--resume-arg must say what to resume: put {checkpoint} in it");
  }
  LOCKSTEP_RETURN_IF_ERROR(MakeDirs(o.work_dir));
  const auto say = [&](const std::string& line) {
    if (o.progress) o.progress(line);
  };
  report->reference_dir = o.work_dir + "/reference";
  std::string how;
  double checkpointed_s = 0;
  LOCKSTEP_RETURN_IF_ERROR(
      RunCommand(o, "reference", CommandFor(o, report->reference_dir, o.world), {}, &how, &checkpointed_s));
  if (NewestResumable(report->reference_dir).empty()) {
    return Status::InvalidArgument("the reference run left no checkpoint (checkpoint-N, or a Lightning .ckpt) in " +
                                   report->reference_dir + ": nothing a resume could start from");
  }
  char line[96];
  std::snprintf(line, sizeof(line), "reference: done, %.2f s after its first checkpoint", checkpointed_s);
  say(line);

  // What a whole checkpoint of this command holds: a variant's checkpoint lacking any of it
  // is a save still being written when the signal landed, never resumed from.
  const std::set<std::string> whole = WholeCheckpointFiles(report->reference_dir);
  std::vector<VariantPlan> plan = {{"sigterm", {SIGTERM, 0.0}, o.world}};
  std::mt19937_64 gen(o.kill_seed);
  for (int i = 0; i < o.kill_random; ++i) {
    const double u = static_cast<double>(gen() >> 11) * 0x1.0p-53;
    plan.push_back({"kill-" + std::to_string(i + 1), {SIGKILL, u * 0.9 * checkpointed_s}, o.world});
  }
  for (const auto& [from, to] : o.worlds) {
    plan.push_back({"world-" + std::to_string(from) + "-to-" + std::to_string(to), {SIGTERM, 0.0}, to});
  }
  for (const auto& [name, interrupt, resume_world] : plan) {
    VerifyCmdVariant v;
    v.name = name;
    const std::string dir = o.work_dir + "/" + name;
    RemoveTree(dir);
    LOCKSTEP_RETURN_IF_ERROR(RunCommand(o, name, CommandFor(o, dir, o.world), interrupt, &v.how, nullptr, &whole));
    if (resume_world != o.world) v.how += "; resumed at world size " + std::to_string(resume_world);
    std::vector<std::string> skipped;
    v.resumed_from = NewestResumable(dir, &skipped, &whole);
    if (v.resumed_from.empty()) return Status::IOError(name + ": the interrupted run left no checkpoint-N in " + dir);
    for (const auto& s : skipped) v.how += "; passed over " + s;
    v.not_resumable_because = NotResumableBecause(v.resumed_from);
    // A resume from the reference's last checkpoint trains nothing: it proves nothing.
    if (CheckpointStep(v.resumed_from) >= CheckpointStep(NewestResumable(report->reference_dir))) {
      v.not_counted = "the run had saved its last checkpoint (" + fs::path(v.resumed_from).filename().string() +
                      "): no step left to resume";
    }
    const std::string resume =
        CommandFor(o, dir, resume_world) + " " + Substitute(o.resume_arg, "{checkpoint}", v.resumed_from);
    LOCKSTEP_RETURN_IF_ERROR(RunCommand(o, name + "-resumed", resume, {}, &how));
    LOCKSTEP_RETURN_IF_ERROR(DiffRuns(report->reference_dir, dir, Tolerance(), &v.diff));
    say(name + ": " + v.how + ", resumed from " + fs::path(v.resumed_from).filename().string() + ": " +
        (!v.not_counted.empty() ? "NOT COUNTED"
         : v.diff.identical()   ? "BIT-EXACT"
                                : "DIVERGED"));
    report->variants.push_back(std::move(v));
  }
  return WriteJsonFile(o.work_dir + "/" + kVerifyReportFile, VerifyCmdReportJson(*report));
}

nlohmann::json VerifyCmdReportJson(const VerifyCmdReport& r) {
  nlohmann::json variants = nlohmann::json::array();
  for (const auto& v : r.variants) {
    variants.push_back(
        {{"name", v.name},
         {"how", v.how},
         {"resumed_from", v.resumed_from},
         {"not_resumable_because", v.not_resumable_because},
         {"counted", v.not_counted.empty()},
         {"not_counted", v.not_counted.empty() ? nlohmann::json() : nlohmann::json(v.not_counted)},
         {"bit_exact", v.diff.identical()},
         {"notes", v.diff.notes},
         {"compared_by", v.diff.compared_by},
         {"first_divergence", v.diff.first_divergence ? v.diff.first_divergence->ToJson() : nlohmann::json()}});
  }
  return {{"bit_exact", r.bit_exact()},
          {"variants_counted", r.counted()},
          {"reference", r.reference_dir},
          {"variants", variants}};
}

std::string VerifyCmdReportText(const VerifyCmdReport& r) {
  std::string out;
  for (const auto& v : r.variants) {
    out += v.name + ": " + v.how + "; resumed from " + fs::path(v.resumed_from).filename().string() + " (compared by " +
           v.diff.compared_by + "): ";
    if (!v.not_counted.empty()) {
      out += "NOT COUNTED: " + v.not_counted + "\n";
    } else if (v.diff.identical()) {
      out += "BIT-EXACT\n";
    } else {
      out +=
          "DIVERGED" + (v.diff.first_divergence ? " at " + v.diff.first_divergence->ToString() : std::string()) + "\n";
    }
    for (const auto& why : v.not_resumable_because) out += "  note: " + why + "\n";
    for (const auto& note : v.diff.notes) out += "  note: " + note + "\n";
  }
  if (r.counted() == 0) {
    out += "verdict: NOT PROVEN: no interruption left a step to resume (raise --kill-random, or save earlier)\n";
  } else {
    out += r.bit_exact() ? "verdict: BIT-EXACT: every resumed run that trained is the uninterrupted run (" +
                               std::to_string(r.counted()) + " of " + std::to_string(r.variants.size()) + " variants)\n"
                         : "verdict: DIVERGED: a resumed run is not the uninterrupted run\n";
  }
  return out;
}

}  // namespace lockstep
