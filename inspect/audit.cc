#include "inspect/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>

#include "formats/checkpoint.h"
#include "formats/checkpoint_layout.h"
#include "formats/file_util.h"
#include "formats/json_file.h"
#include "formats/rotation.h"
#include "formats/run_layout.h"
#include "formats/run_lock.h"
#include "formats/step_log.h"
#include "formats/torch_archive.h"
#include "formats/zip_archive.h"
#include "inspect/layout_audit.h"
#include "inspect/run_checks.h"

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
      "merges.txt", peft::kModelCardFile, "runs", hf::kBinWeightsFile, kVerifyReportFile,
      // PEFT's adapter, more tokenizer and processor files, HF's sharded .bin index
      peft::kAdapterSafetensorsFile, peft::kAdapterBinFile, peft::kAdapterConfigFile, "tokenizer.model",
      "added_tokens.json", "chat_template.jinja", "chat_template.json", "preprocessor_config.json",
      "processor_config.json", hf::kBinWeightsIndexFile, "spiece.model", "sentencepiece.bpe.model",
      // accelerate's project folder and Lightning's logs
      accelerate::kCheckpointsDir, lightning::kLogsDir, "hparams.yaml", "metrics.csv"};
  return kKnown.count(name) == 1 ||
         (HasSuffix(name, ".safetensors") && name.rfind(hf::kSafetensorsShardPrefix, 0) == 0) ||
         (HasSuffix(name, ".bin") && name.rfind(hf::kBinShardPrefix, 0) == 0) || HasSuffix(name, lightning::kExtension);
}

}  // namespace

bool AuditReport::healthy() const {
  if (!problems.empty()) return false;
  for (const auto& c : checkpoints) {
    if (!c.problems.empty()) return false;
  }
  return true;
}

size_t AuditReport::not_checked() const {
  return std::count_if(checkpoints.begin(), checkpoints.end(),
                       [](const CheckpointAudit& c) { return c.status == kNotChecked; });
}

CheckpointAudit AuditCheckpoint(const std::string& path, bool in_run) {
  CheckpointAudit c;
  c.name = fs::path(path).filename().string();
  int64_t step = -1;
  c.step = ParseCheckpointDirName(c.name, &step) ? step : -1;
  c.status = kComplete;
  std::error_code sec;
  const auto st = fs::status(path, sec);
  if (!sec && fs::is_regular_file(st)) {  // one file: a Lightning .ckpt or a torch.save of the user's own
    c.layout = HasSuffix(c.name, lightning::kExtension) ? layout::kLightning : layout::kTorchSave;
    if (c.layout == layout::kLightning)
      AuditLightning(path, &c);
    else
      AuditTorchSave(path, &c);
    c.bytes = fs::file_size(path, sec);
  } else if (sec || !fs::is_directory(st)) {
    c.layout = layout::kOwn;
    Fail(&c, kCorrupt, path + ": cannot be read as a directory" + (sec ? " (" + sec.message() + ")" : ""));
  } else {
    c.layout = CheckpointLayout(path);
    if (c.layout == layout::kLockstep)
      AuditLockstep(path, &c);
    else if (c.layout == layout::kHf)
      AuditHf(path, &c);
    else if (c.layout == layout::kDcp)
      AuditDcp(path, &c);
    else if (c.layout == layout::kAccelerate)
      AuditAccelerate(path, &c);
    else if (in_run) {
      c.layout = layout::kOwn;
      AuditOwn(path, &c);
      c.notes.push_back(path +
                        ": not a layout Lockstep knows (a script's own format, or a save cut short before its "
                        "library's own files): listed as it is, its torch.save files read as data");
    } else {
      c.layout = layout::kOwn;
      Fail(&c, kIncomplete,
           path + ": holds no checkpoint files Lockstep knows (Lockstep, Hugging Face, DCP, accelerate)");
    }
    // The cheap checks read headers and sizes only: a file this user may not read is found
    // here, never taken for healthy. A checkpoint without a manifest's sizes is as large as
    // what it holds.
    const bool manifest_sized = c.bytes > 0;
    for (const auto& rel : FilesBelow(path)) {
      const std::string file = path + "/" + rel;
      const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        Fail(&c, kUnreadable, file + ": cannot read: " + std::strerror(errno));
      } else {
        ::close(fd);
      }
      if (!manifest_sized) c.bytes += fs::file_size(file, sec);
    }
  }
  c.resumable = c.resumable && c.status == kComplete;
  return c;
}

namespace {

// The run's checkpoints, each audited; InvalidArgument when `run_dir` holds nothing a run leaves.
Status AuditCheckpoints(const std::string& run_dir, AuditReport* report) {
  std::vector<RunCheckpoint> listed;
  LOCKSTEP_RETURN_IF_ERROR(ListRunCheckpoints(run_dir, &listed));
  bool run_like = false;  // anything a run leaves at its top level
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    run_like |= IsKnownRunFile(name) || IsCheckpointLeftover(name) || name.rfind(kHfStagingPrefix, 0) == 0;
  }
  if (listed.empty() && !run_like) {
    return Status::InvalidArgument(run_dir + ": not a run directory (no checkpoint-N, no " + kStepLogFile + ", no " +
                                   kTrainerStateFile +
                                   ", no accelerate checkpoints/, no Lightning .ckpt); pass a run directory, a "
                                   "checkpoint directory, or a .h5/.safetensors/.pt/.ckpt file");
  }
  for (const auto& l : listed) {
    // A checkpoint this user may not even list is unreadable input, not a finding.
    std::error_code lec;
    if (IsDirectory(l.path)) fs::directory_iterator(l.path, lec);
    if (lec) return Status::IOError(l.path + ": cannot list: " + lec.message());
    CheckpointAudit c = AuditCheckpoint(l.path, /*in_run=*/true);
    c.name = l.name;
    if (c.step < 0) c.step = l.step;
    report->checkpoints.push_back(std::move(c));
  }
  return Status::Ok();
}

// The model files the Trainer's save_model() wrote at the top of an HF output_dir, beside the
// checkpoints: read as their format says, and each model file the newest checkpoint holds
// (the same save_model wrote both) present.
void AuditFinalModel(const std::string& run_dir, AuditReport* report) {
  if (CheckpointLayout(run_dir) == layout::kLockstep) return;
  const std::string final_weights = ModelWeightsFile(run_dir);
  static const char* const kModelFiles[] = {hf::kConfigFile, hf::kGenerationConfigFile, peft::kAdapterConfigFile,
                                            "README.md", hf::kTrainingArgsFile};
  const bool saved_model = !final_weights.empty() || Exists(run_dir + "/" + hf::kConfigFile) ||
                           Exists(run_dir + "/" + peft::kAdapterConfigFile);
  if (!saved_model) return;
  const CheckpointAudit* newest = nullptr;
  for (const auto& c : report->checkpoints) {
    if (c.layout == layout::kHf) newest = &c;
  }
  CheckpointAudit top;
  top.status = kComplete;
  if (final_weights.empty()) {
    const std::string expected = newest != nullptr ? ModelWeightsFile(run_dir + "/" + newest->name) : "";
    Fail(&top, kIncomplete,
         run_dir + "/" + (expected.empty() ? std::string(hf::kSafetensorsFile) : expected) +
             ": missing (the final model's other files are there, and save_model() writes its weights with them)");
  } else {
    AuditWeights(run_dir, final_weights, &top);
  }
  if (newest != nullptr) {
    const std::string from = run_dir + "/" + newest->name;
    for (const char* f : kModelFiles) {
      if (Exists(from + "/" + f) && !Exists(run_dir + "/" + f)) {
        Fail(&top, kIncomplete,
             run_dir + "/" + f + ": missing (save_model() writes it with the final model, as it did in " +
                 newest->name + ")");
      }
    }
  }
  for (const char* f : {hf::kTrainingArgsFile}) {
    if (Exists(run_dir + "/" + f)) AuditTorchArchive(run_dir + "/" + f, &top);
  }
  report->findings["final_model"] = {
      {"file", final_weights.empty() ? json() : json(final_weights)}, {"tensors", top.tensors}, {"status", top.status}};
  for (const auto& p : top.problems) report->problems.push_back(p);
}

// The results a finished Lockstep run writes together at its end (trainer/trainer.cc,
// Finish): train_results.json, eval_results.json when it evaluated, all_results.json (the
// two merged) and trainer_state.json. Any of them there means all of them should be.
void AuditLockstepResults(const std::string& run_dir, AuditReport* report) {
  if (std::none_of(report->checkpoints.begin(), report->checkpoints.end(),
                   [](const CheckpointAudit& c) { return c.layout == layout::kLockstep; })) {
    return;
  }
  const std::vector<const char*> always = {kTrainResultsFile, kAllResultsFile, kTrainerStateFile};
  std::string present;
  for (const char* f : {kTrainResultsFile, kEvalResultsFile, kAllResultsFile, kTrainerStateFile}) {
    if (Exists(run_dir + "/" + f)) present = f;
  }
  if (present.empty()) return;  // a run that has not finished
  std::vector<const char*> expected = always;
  json all;
  if (ReadJsonFile(run_dir + "/" + kAllResultsFile, &all).ok() && all.is_object()) {
    for (const auto& [k, v] : all.items()) {
      if (k.rfind("eval_", 0) == 0) {
        expected.push_back(kEvalResultsFile);
        break;
      }
    }
  }
  for (const char* f : expected) {
    const std::string path = run_dir + "/" + f;
    if (!Exists(path)) {
      report->problems.push_back(path +
                                 ": missing (the trainer writes its results files together when the run ends, "
                                 "and " +
                                 present + " is here)");
      continue;
    }
    json j;
    const Status st = ReadJsonFile(path, &j);
    if (!st.ok()) report->problems.push_back(st.message());
  }
}

// The latest checkpoint a resume continues exactly. None is a problem only where the run's
// checkpoints are of layouts Lockstep checks and none of them is whole; weights-only saves
// and a script's own format are said so as notes.
void FindResumable(const std::string& run_dir, AuditReport* report) {
  bool checkable = false, own = false, weights_only = false;
  for (const auto& c : report->checkpoints) {
    if (c.resumable) report->latest_resumable = c.name;
    own |= c.layout == layout::kOwn;
    checkable |= c.layout != layout::kOwn;
    weights_only |= c.status == kComplete && !c.resumable;
  }
  if (!report->latest_resumable.empty()) return;
  if (checkable && !weights_only) {
    report->problems.push_back(run_dir + ": no resumable checkpoint");
  } else if (weights_only) {
    report->notes.push_back(run_dir +
                            ": no checkpoint a resume continues exactly: the complete ones hold weights only "
                            "(save_only_model, save_weights_only)");
  } else if (own) {
    report->notes.push_back(run_dir +
                            ": its checkpoints are in the script's own format (no layout Lockstep knows): Lockstep "
                            "cannot tell which a resume continues exactly");
  }
}

// Staging and delete leftovers of saves that never finished, and entries no run writes.
void AuditLeftovers(const std::string& run_dir, AuditReport* report) {
  std::set<std::string> tops;  // the first component of every checkpoint's name
  for (const auto& c : report->checkpoints) tops.insert(c.name.substr(0, c.name.find('/')));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (tops.count(name)) continue;
    if (name.rfind(kStagingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() + ": leftover staging directory of a save that never committed");
    } else if (name.rfind(kDeletingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() + ": leftover of a checkpoint delete that never finished");
    } else if (name.rfind(kHfStagingPrefix, 0) == 0) {
      report->problems.push_back(e.path().string() +
                                 ": leftover staging directory of a Hugging Face save "
                                 "that was never renamed to checkpoint-N");
    } else if (!IsKnownRunFile(name)) {
      report->notes.push_back(e.path().string() + ": not part of any layout Lockstep knows (listed, not checked)");
    }
  }
}

// The best checkpoint trainer_state.json records (the run's, else the latest resumable
// checkpoint's), matched by name: HF records an absolute path from the machine that
// trained. kNoBestStep when none is recorded or it is not in this run (a problem).
int64_t FindBestStep(const std::string& run_dir, AuditReport* report) {
  json state;
  std::string origin = run_dir + "/" + kTrainerStateFile;
  if (!Exists(origin) && !report->latest_resumable.empty()) {
    origin = run_dir + "/" + report->latest_resumable + "/" + kTrainerStateFile;
  }
  if (Exists(origin)) {
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
  const bool exists = names_checkpoint && IsDirectory(run_dir + "/" + name);
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
// as data) holds over the complete checkpoint-N directories, the best protected.
void AuditRotation(const std::string& run_dir, int64_t best_step, AuditReport* report) {
  std::vector<int64_t> complete;
  std::string newest;
  for (const auto& c : report->checkpoints) {
    int64_t step;
    if (!ParseCheckpointDirName(c.name, &step)) continue;
    if (c.status == kComplete) complete.push_back(step);
    newest = run_dir + "/" + c.name;
  }
  std::optional<int64_t> limit;
  json args;
  if (!newest.empty() && ReadJsonFile(newest + "/" + kTrainingArgsJsonFile, &args).ok() && args.is_object() &&
      args.value("save_total_limit", json()).is_number_integer()) {
    limit = args["save_total_limit"].get<int64_t>();
  } else if (!newest.empty() && Exists(newest + "/" + hf::kTrainingArgsFile)) {
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

json VerificationJson(const FileVerification& v) {
  return {{"verified", v.verified}, {"unverifiable", v.unverifiable}};
}

}  // namespace

Status AuditRun(const std::string& run_dir, const AuditOptions& options, AuditReport* report) {
  *report = AuditReport();
  report->run_dir = run_dir;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return Status::NotFound(run_dir + ": not a directory");
  LOCKSTEP_RETURN_IF_ERROR(AuditCheckpoints(run_dir, report));  // 1. every checkpoint, by its layout
  AuditSiblings(run_dir, report);                               // 2. the files every save writes
  if (options.verify) VerifyCheckpoints(run_dir, options, report);
  FindResumable(run_dir, report);
  AuditFinalModel(run_dir, report);  // 3. the final model or results at the top
  AuditLockstepResults(run_dir, report);
  AuditLeftovers(run_dir, report);                                // 4. leftovers and strays
  AuditRotation(run_dir, FindBestStep(run_dir, report), report);  // 5. best checkpoint, rotation
  StepLogContents read_here;
  const StepLogContents* log = AuditStepLog(run_dir, options.step_log, &read_here, report);  // 6. the step log
  if (options.verify) {
    report->verified = true;
    VerifyRunFiles(run_dir, log, report);
  }
  return Status::Ok();
}

json AuditReportJson(const AuditReport& r) {
  json checkpoints = json::array();
  for (const auto& c : r.checkpoints) {
    json j = {{"step", c.step},     {"name", c.name},         {"layout", c.layout},
              {"status", c.status}, {"bytes", c.bytes},       {"resumable", c.resumable},
              {"ranks", c.ranks},   {"problems", c.problems}, {"notes", c.notes}};
    if (r.verified) j["verification"] = VerificationJson(c.verification);
    checkpoints.push_back(j);
  }
  json out = {{"run_dir", r.run_dir},
              {"healthy", r.healthy()},
              {"checkpoints_not_checked", r.not_checked()},
              {"checkpoints", checkpoints},
              {"latest_resumable", r.latest_resumable.empty() ? json() : json(r.latest_resumable)},
              {"problems", r.problems},
              {"notes", r.notes},
              {"findings", r.findings}};
  if (r.verified) out["verification"] = VerificationJson(r.verification);
  return out;
}

}  // namespace lockstep
