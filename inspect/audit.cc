#include "inspect/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/checksum.h"
#include "formats/dcp.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/rotation.h"
#include "formats/run_lock.h"
#include "formats/safetensors.h"
#include "formats/step_log.h"
#include "formats/torch_archive.h"
#include "formats/zip_archive.h"
#include "inspect/coverage.h"
#include "inspect/layout_audit.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {

using namespace audit_detail;  // the per-layout checks (layout_audit.h)

namespace {

// HF's save_total_limit, read from training_args.bin as data.
std::optional<int64_t> HfSaveTotalLimit(const std::string& dir) {
  TorchArchive archive;
  if (!ReadTorchArchive(dir + "/" + hf::kTrainingArgsFile, &archive).ok()) return std::nullopt;
  const nlohmann::json limit = PickledScalars(archive).value("save_total_limit", nlohmann::json());
  if (limit.is_number_integer()) return limit.get<int64_t>();
  return std::nullopt;
}

// transformers 4.36 and later stage a save in tmp-checkpoint-N and rename it when done; on
// multi-node runs the other nodes' staging directories have been left behind.
constexpr char kHfStagingPrefix[] = "tmp-checkpoint-";

bool IsKnownRunFile(const std::string& name) {
  static const std::set<std::string> kKnown = {
      kStepLogFile, kRunLockFile, kTrainResultsFile, kEvalResultsFile, kAllResultsFile, kTrainerStateFile,
      hf::kConfigFile, hf::kGenerationConfigFile, hf::kSafetensorsFile, hf::kSafetensorsIndexFile,
      hf::kTrainingArgsFile, "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
      "merges.txt", "README.md", "runs", "pytorch_model.bin", "verify_report.json",
      // PEFT's adapter, more tokenizer and processor files, HF's sharded .bin index
      "adapter_model.safetensors", "adapter_model.bin", hf::kAdapterConfigFile, "tokenizer.model", "added_tokens.json",
      "chat_template.jinja", "chat_template.json", "preprocessor_config.json", "processor_config.json",
      "pytorch_model.bin.index.json", "spiece.model", "sentencepiece.bpe.model"};
  return kKnown.count(name) == 1 || (HasSuffix(name, ".safetensors") && name.rfind("model-", 0) == 0) ||
         (HasSuffix(name, ".bin") && name.rfind("pytorch_model-", 0) == 0);
}

}  // namespace

bool AuditReport::healthy() const {
  if (!problems.empty()) return false;
  for (const auto& c : checkpoints) {
    if (!c.problems.empty()) return false;
  }
  return true;
}

namespace {

// Every entry of `run_dir` named like a checkpoint, whatever it is (a file or a broken link
// named checkpoint-N is a problem to report, not something to skip), by step.
// InvalidArgument when `run_dir` holds nothing a Lockstep or HF run leaves.
Status ListRunCheckpoints(const std::string& run_dir, std::vector<CheckpointDir>* dirs) {
  std::error_code ec;
  bool run_like = false;  // anything a Lockstep or HF run leaves at its top level
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t step;
    if (ParseCheckpointDirName(name, &step)) dirs->push_back({step, e.path().string()});
    run_like |= IsKnownRunFile(name) || IsCheckpointLeftover(name) || name.rfind(kHfStagingPrefix, 0) == 0;
  }
  if (ec) return Status::IOError(run_dir + ": cannot list: " + ec.message());
  if (dirs->empty() && !run_like) {
    return Status::InvalidArgument(run_dir + ": not a run directory (no checkpoint-N, no " + kStepLogFile + ", no " +
                                   kTrainerStateFile +
                                   "); pass a run directory, a checkpoint directory, "
                                   "or a .h5/.safetensors/.pt file");
  }
  std::sort(dirs->begin(), dirs->end(), [](const CheckpointDir& a, const CheckpointDir& b) { return a.step < b.step; });
  return Status::Ok();
}

// --verify over the checkpoints the cheap pass found complete; progress runs over the
// whole run, as the cheap pass gave every checkpoint's size.
void VerifyCheckpoints(const std::string& run_dir, const AuditOptions& options, AuditReport* report) {
  uint64_t total = 0, done = 0;
  for (const auto& c : report->checkpoints) total += c.status == "complete" ? c.bytes : 0;
  for (auto& c : report->checkpoints) {
    if (c.status != "complete") continue;
    ByteProgress progress;
    if (options.progress) progress = [&](uint64_t bytes) { options.progress(done += bytes, total, c.name); };
    VerifyCheckpoint(run_dir + "/" + c.name, progress, &c);
  }
}

// The latest resumable checkpoint, and the final model an HF output directory holds at its
// top after trainer.save_model(). Returns the complete checkpoints' steps.
std::vector<int64_t> FindResumable(const std::string& run_dir, AuditReport* report) {
  std::vector<int64_t> complete;
  for (const auto& c : report->checkpoints) {
    if (c.status != "complete") continue;
    complete.push_back(c.step);
    if (c.resumable) report->latest_resumable = c.name;
  }
  const std::string final_weights = ModelWeightsFile(run_dir);
  if (!final_weights.empty() && CheckpointLayout(run_dir) != "lockstep") {
    CheckpointAudit top;
    top.status = "complete";
    AuditWeights(run_dir, final_weights, &top);
    report->findings["final_model"] = {{"file", final_weights}, {"tensors", top.tensors}, {"status", top.status}};
    for (const auto& p : top.problems) report->problems.push_back(p);
  }
  if (report->latest_resumable.empty()) {
    report->problems.push_back(run_dir + (complete.empty() ? ": no resumable checkpoint"
                                                           : ": no checkpoint a resume continues exactly (the complete "
                                                             "ones hold weights only: save_only_model)"));
  }
  return complete;
}

// Staging and delete leftovers of saves that never finished, and entries no run writes.
void AuditLeftovers(const std::string& run_dir, AuditReport* report) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    int64_t step;
    if (ParseCheckpointDirName(name, &step)) continue;
    if (name.rfind(kStagingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() + ": leftover staging directory of a save that never committed");
    } else if (name.rfind(kDeletingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() + ": leftover of a checkpoint delete that never finished");
    } else if (name.rfind(kHfStagingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() +
                                 ": leftover staging directory of a Hugging Face save "
                                 "that was never renamed to checkpoint-N");
    } else if (!IsKnownRunFile(name)) {
      report->notes.push_back(e.path().string() + ": stray entry, not part of a run");
    }
  }
}

// The best checkpoint trainer_state.json records (the run's, else the latest resumable
// checkpoint's), matched by name: HF records an absolute path from the machine that
// trained. kNoBestStep when none is recorded or it is not in this run (a problem).
int64_t FindBestStep(const std::string& run_dir, AuditReport* report) {
  json state;
  std::string origin = run_dir + "/" + kTrainerStateFile;
  if (!fs::exists(origin) && !report->latest_resumable.empty()) {
    origin = run_dir + "/" + report->latest_resumable + "/" + kTrainerStateFile;
  }
  if (fs::exists(origin)) {
    Status st = ReadJsonFile(origin, &state);
    if (st.ok() && !state.is_object()) st = Status::Corruption(origin + ": not a JSON object");
    if (!st.ok()) report->problems.push_back(st.message());
  }
  const json best = state.is_object() ? state.value("best_model_checkpoint", json()) : json();
  if (best.is_null()) return kNoBestStep;
  if (!best.is_string()) {
    report->problems.push_back(origin + ": best_model_checkpoint is " + DumpJson(best) + ", not a path");
    return kNoBestStep;
  }
  std::string recorded = best.get<std::string>();
  while (recorded.size() > 1 && recorded.back() == '/') recorded.pop_back();
  const std::string name = fs::path(recorded).filename().string();
  int64_t step = kNoBestStep;
  const bool names_checkpoint = ParseCheckpointDirName(name, &step);
  const bool exists = names_checkpoint && fs::is_directory(run_dir + "/" + name);
  report->findings["best_model_checkpoint"] = {{"recorded", best}, {"in_this_run", name}, {"exists", exists}};
  if (!names_checkpoint) {
    report->problems.push_back(origin + ": best_model_checkpoint '" + best.get<std::string>() +
                               "' does not name a checkpoint-N directory");
  } else if (!exists) {
    report->problems.push_back(origin + ": best_model_checkpoint " + best.get<std::string>() +
                               " does not exist in this run");
  }
  return exists ? step : kNoBestStep;
}

// Rotation: save_total_limit (Lockstep's training_args.json, or HF's training_args.bin read
// as data) holds over the complete checkpoints, the best protected.
void AuditRotation(const std::string& run_dir, const std::vector<int64_t>& complete, int64_t best_step,
                   AuditReport* report) {
  std::optional<int64_t> limit;
  const std::string newest = report->checkpoints.empty() ? "" : run_dir + "/" + report->checkpoints.back().name;
  json args;
  if (!newest.empty() && ReadJsonFile(newest + "/training_args.json", &args).ok() && args.is_object() &&
      args.value("save_total_limit", json()).is_number_integer()) {
    limit = args["save_total_limit"].get<int64_t>();
  } else if (!newest.empty() && fs::exists(newest + "/" + hf::kTrainingArgsFile)) {
    limit = HfSaveTotalLimit(newest);
  }
  json rotation = {{"kept", complete}, {"best_step", best_step == kNoBestStep ? json() : json(best_step)}};
  rotation["save_total_limit"] = limit ? json(*limit) : json();
  if (limit) {
    const auto extra = CheckpointsToDelete(complete, best_step, *limit);
    rotation["holds"] = extra.empty();
    for (int64_t s : extra) {
      report->problems.push_back(run_dir + "/" + CheckpointDirName(s) + ": save_total_limit " + std::to_string(*limit) +
                                 " (best protected) should have rotated it out");
    }
  }
  report->findings["rotation"] = rotation;
}

// The step log (Lockstep runs) covers every checkpoint, and which samples each epoch saw.
void AuditStepLog(const std::string& run_dir, const StepLogContents* already_read, AuditReport* report) {
  const std::string log_path = run_dir + "/" + kStepLogFile;
  if (!fs::exists(log_path)) {
    if (std::any_of(report->checkpoints.begin(), report->checkpoints.end(),
                    [](const CheckpointAudit& c) { return c.layout == "lockstep"; })) {
      report->problems.push_back(log_path + ": missing, so no checkpoint's steps are recorded");
    }
    return;
  }
  StepLogContents read_here;
  if (already_read == nullptr) {
    const Status st = ReadStepLog(log_path, &read_here);
    if (!st.ok()) return report->problems.push_back(st.message());
  }
  const StepLogContents& log = already_read != nullptr ? *already_read : read_here;
  std::set<int64_t> steps;
  for (const auto& r : log.records) steps.insert(r.value("step", int64_t{-1}));
  json uncovered = json::array();
  for (const auto& c : report->checkpoints) {
    if (c.layout == "lockstep" && !steps.count(c.step)) {
      uncovered.push_back(c.step);
      report->problems.push_back(log_path + ": no record of step " + std::to_string(c.step) + " (" + c.name + ")");
    }
  }
  report->findings["step_log"] = {{"records", log.records.size()},
                                  {"resumes", log.events.size()},
                                  {"last_step", log.records.empty() ? 0 : log.records.back().value("step", 0)},
                                  {"truncated_tail", log.truncated_tail},
                                  {"uncovered_checkpoints", uncovered}};
  if (log.truncated_tail) report->notes.push_back(log_path + ": " + log.tail_problem + " (a killed writer)");
  const CoverageReport coverage = ComputeCoverage(log, log_path);
  report->findings["coverage"] = CoverageJson(coverage);
  for (const auto& p : coverage.problems) report->problems.push_back(log_path + ": " + p);
  for (const auto& n : coverage.notes) report->notes.push_back(log_path + ": " + n);
}

}  // namespace

CheckpointAudit AuditCheckpoint(const std::string& dir) {
  CheckpointAudit c;
  int64_t step = -1;
  c.step = ParseCheckpointDirName(fs::path(dir).filename().string(), &step) ? step : -1;
  c.name = fs::path(dir).filename().string();
  c.status = "complete";
  std::error_code sec;
  const auto st = fs::status(dir, sec);
  if (sec || !fs::is_directory(st)) {
    c.layout = "unknown";
    Fail(&c, "corrupt", dir + ": cannot be read as a directory" + (sec ? " (" + sec.message() + ")" : ""));
  } else {
    c.layout = CheckpointLayout(dir);
    if (c.layout == "lockstep")
      AuditLockstep(dir, &c);
    else if (c.layout == "hf")
      AuditHf(dir, &c);
    else if (c.layout == "dcp")
      AuditDcp(dir, &c);
    else {
      c.layout = "unknown";
      Fail(&c, "incomplete", dir + ": holds no Lockstep or Hugging Face checkpoint files");
    }
  }
  // The cheap checks read headers and sizes only: a file this user may not read is found
  // here, never taken for healthy.
  std::error_code rec;
  for (const auto& e : fs::directory_iterator(dir, rec)) {
    if (!e.is_regular_file(rec)) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      Fail(&c, "unreadable", e.path().string() + ": cannot read: " + std::strerror(errno));
    } else {
      ::close(fd);
    }
  }
  // A checkpoint whose layout gave no size (no manifest): what its files hold, as found.
  if (c.bytes == 0) {
    std::error_code fec;
    for (const auto& e : fs::directory_iterator(dir, fec)) {
      if (e.is_regular_file(fec)) c.bytes += e.file_size(fec);
    }
  }
  return c;
}

Status AuditRun(const std::string& run_dir, const AuditOptions& options, AuditReport* report) {
  *report = AuditReport();
  report->run_dir = run_dir;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return Status::NotFound(run_dir + ": not a directory");
  std::vector<CheckpointDir> dirs;
  LOCKSTEP_RETURN_IF_ERROR(ListRunCheckpoints(run_dir, &dirs));
  for (const auto& d : dirs) report->checkpoints.push_back(AuditCheckpoint(d.path));  // 1. every checkpoint
  if (options.verify) VerifyCheckpoints(run_dir, options, report);
  const std::vector<int64_t> complete = FindResumable(run_dir, report);
  AuditLeftovers(run_dir, report);                                          // 2. leftovers and strays
  AuditRotation(run_dir, complete, FindBestStep(run_dir, report), report);  // 3. best checkpoint, rotation
  AuditStepLog(run_dir, options.step_log, report);                          // 4. the step log
  return Status::Ok();
}

json AuditReportJson(const AuditReport& r) {
  json checkpoints = json::array();
  for (const auto& c : r.checkpoints) {
    checkpoints.push_back({{"step", c.step},
                           {"name", c.name},
                           {"layout", c.layout},
                           {"status", c.status},
                           {"bytes", c.bytes},
                           {"resumable", c.resumable},
                           {"problems", c.problems},
                           {"notes", c.notes}});
  }
  return {{"run_dir", r.run_dir},
          {"healthy", r.healthy()},
          {"checkpoints", checkpoints},
          {"latest_resumable", r.latest_resumable.empty() ? json() : json(r.latest_resumable)},
          {"problems", r.problems},
          {"notes", r.notes},
          {"findings", r.findings}};
}

}  // namespace lockstep
